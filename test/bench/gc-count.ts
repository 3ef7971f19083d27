// Preloaded into the Node servers of the latency bench (`node --import test/bench/gc-count.ts ...`):
// counts V8's collections and their pauses as Node reports them (perf_hooks 'gc' entries). On SIGUSR2
// it writes `gc-count MINOR MAJOR PAUSE_MS MAX_MS` to stderr (totals so far; the largest single pause
// since the previous report). --trace-gc is no use for this: V8 prints it through C stdio, which a
// pipe buffers in 4 KiB blocks, so its lines do not arrive while a run is measured.
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

let minor = 0;
let major = 0;
let pauseMs = 0;
let maxMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++;
    else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++;
    pauseMs += e.duration;
    maxMs = Math.max(maxMs, e.duration);
  }
}).observe({ entryTypes: ['gc'] });

process.on('SIGUSR2', () => {
  process.stderr.write(`gc-count ${minor} ${major} ${pauseMs.toFixed(3)} ${maxMs.toFixed(3)}\n`);
  maxMs = 0;
});
