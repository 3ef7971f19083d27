// A full garbage collection on demand, for the few moments where a DNS server knows it has just
// dropped a lot: after a Kubernetes list (initial sync, relist) the parsed pages are garbage, and an
// uncapped V8 heap otherwise keeps the pages it grew to hold them (measured: 308 MiB resident for a
// zone that needs 129). One collection there costs tens of milliseconds, once per list.
import v8 from 'node:v8';
import vm from 'node:vm';

type GcFn = (opts?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void;
let gc: GcFn | null | undefined;

function collector(): GcFn | null {
  if (gc === undefined) {
    try {
      const g = (globalThis as { gc?: GcFn }).gc;
      if (typeof g === 'function') gc = g;
      else {
        // --expose-gc at run time: the flag applies to contexts created after it, so a fresh
        // context hands out the collector without exposing `gc` to this process's own globals.
        v8.setFlagsFromString('--expose-gc');
        gc = vm.runInNewContext('gc') as GcFn;
      }
    } catch {
      gc = null;
    }
  }
  return gc;
}

/**
 * Run a full, memory-reducing collection ("last resort": compacts and hands free pages back to the
 * system; a plain major GC keeps them committed). Returns the pause in ms, or -1 when the runtime does
 * not allow it (then nothing happens).
 */
export function fullGc(): number {
  return timedMajorGc('last-resort');
}

/** A synchronous major collection of the given flavor: the pause in ms, or -1 when not allowed. */
function timedMajorGc(flavor: 'regular' | 'last-resort'): number {
  const g = collector();
  if (!g) return -1;
  const t0 = performance.now();
  g({ type: 'major', execution: 'sync', flavor });
  return performance.now() - t0;
}

/**
 * What a bulk load leaves for a major GC to find: the old generation's used bytes (every heap space
 * but the young one, which scavenges empty on their own) plus external memory (ArrayBuffers: response
 * bodies, socket reads), whose garbage also waits for a major GC once its holder was promoted.
 */
export function oldGenerationBytes(): number {
  let bytes = v8.getHeapStatistics().external_memory;
  for (const sp of v8.getHeapSpaceStatistics()) {
    if (sp.space_name !== 'new_space' && sp.space_name !== 'new_large_object_space') bytes += sp.space_used_size;
  }
  return bytes;
}

/**
 * Stop V8 from allocating objects straight into the old generation because objects from the same
 * allocation site survived before ("allocation-site pretenuring"). A list does exactly what trips it:
 * the initial sync keeps every slim record it converts, so their allocation sites are marked long-lived,
 * and a relist then converts the same objects again, finds them unchanged and drops them, but they were
 * allocated old and die there: measured, the old generation grew ~6 MiB per 400 ms of a 10k/100k relist
 * (GC pacing then caps it at the step), against ~1 MiB without. Young allocation costs the kept
 * records a copy or two in a scavenge. Process-wide, and V8 reads the flag at allocation and GC time,
 * so setting it at run time works (src/gc.test.ts does not test V8; docs/performance.md has the
 * measurements). Returns false when the runtime refused the flag.
 */
export function disablePretenuring(): boolean {
  try {
    v8.setFlagsFromString('--no-allocation-site-pretenuring');
    return true;
  } catch {
    return false;
  }
}

export interface GcPacerOptions {
  /** Collect once `measure()` grew by this much since the last collection. */
  stepBytes: number;
  /** Bytes a collection could free; default oldGenerationBytes(). Tests inject it. */
  measure?: () => number;
  /** Run the collection; the pause in ms or -1 when not allowed. Default: a plain, synchronous major GC. */
  collect?: () => number;
}

/**
 * Paces major collections through a bulk load (a list arriving page by page). Left alone, V8 lets the
 * old generation grow well past the live heap before it marks, and what a load promotes dies old (the
 * page buffers, records caught by a scavenge mid-page, a relist's unchanged records): that growth is
 * the load's RSS peak. `tick()` (after each batch of records) runs a plain major GC once the old
 * generation plus external memory grew `stepBytes` past what the last one left, so the peak stays near
 * live + step whatever the list's size. The young generation is left out of the measure: it empties
 * itself, and counting its fill (0 to 4 MiB) made the trigger fire early by up to that much.
 */
export class GcPacer {
  private readonly stepBytes: number;
  private readonly measure: () => number;
  private readonly collect: () => number;
  private base = -1;

  constructor(opts: GcPacerOptions) {
    this.stepBytes = opts.stepBytes;
    this.measure = opts.measure ?? oldGenerationBytes;
    this.collect = opts.collect ?? (() => timedMajorGc('regular'));
  }

  /** Collect if the measure grew past the step; the pause in ms, 0 when not needed, -1 when not allowed. */
  tick(): number {
    const used = this.measure();
    if (this.base < 0) this.base = used;
    if (used < this.base + this.stepBytes) return 0;
    const ms = this.collect();
    if (ms < 0) return -1;
    this.base = this.measure();
    return ms;
  }

  /** The load is over: the next one starts from the heap as it will be then. */
  reset(): void {
    this.base = -1;
  }
}
