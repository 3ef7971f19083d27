// A full garbage collection on demand, for the few moments where a DNS server knows it has just
// dropped a lot: after a Kubernetes list (initial sync, relist) the parsed pages are garbage, and an
// uncapped V8 heap otherwise keeps the pages it grew to hold them (measured: 308 MiB resident for a
// zone that needs 129). One collection there costs tens of milliseconds, once per list.
import v8 from 'node:v8';
import vm from 'node:vm';

type GcFn = (opts?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void;
let gc: GcFn | null | undefined;

/**
 * Run a full, memory-reducing collection ("last resort": compacts and hands free pages back to the
 * system; a plain major GC keeps them committed). Returns the pause in ms, or -1 when the runtime does
 * not allow it (then nothing happens).
 */
export function fullGc(): number {
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
  if (!gc) return -1;
  const t0 = performance.now();
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return performance.now() - t0;
}
