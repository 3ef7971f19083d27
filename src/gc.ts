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
  const g = collector();
  if (!g) return -1;
  const t0 = performance.now();
  g({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return performance.now() - t0;
}

/**
 * Paces major collections through a bulk load (a list arriving page by page). Left alone, V8 lets the
 * old generation grow well past the live heap before it marks (measured: 28 MiB live, 45-58 MiB
 * before each mark-compact during a relist), because a parsed list page that is still being
 * converted when a scavenge comes is promoted, and dies old. That growth is the load's RSS peak.
 * `tick()` after each page runs a plain major GC once the heap grew `stepBytes` past what the last one
 * left, so the peak stays near live + step whatever the list's size.
 */
export class GcPacer {
  private readonly stepBytes: number;
  private base = -1;

  constructor(stepBytes: number) {
    this.stepBytes = stepBytes;
  }

  /** Collect if the heap grew past the step; the pause in ms, 0 when not needed, -1 when not allowed. */
  tick(): number {
    const used = v8.getHeapStatistics().used_heap_size;
    if (this.base < 0) this.base = used;
    if (used < this.base + this.stepBytes) return 0;
    const g = collector();
    if (!g) return -1;
    const t0 = performance.now();
    g({ type: 'major', execution: 'sync' });
    this.base = v8.getHeapStatistics().used_heap_size;
    return performance.now() - t0;
  }

  /** The load is over: the next one starts from the heap as it will be then. */
  reset(): void {
    this.base = -1;
  }
}
