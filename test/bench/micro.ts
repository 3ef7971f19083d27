// The loop the per-function micro-benchmarks share: grow the batch until one batch takes ~20 ms,
// then keep the best ns/op of three rounds (the first, JIT-cold batch is not counted).
let sink = 0;

export function microBench(name: string, fn: () => unknown, ms = 300): number {
  const once = (n: number): number => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) if (fn()) sink++;
    return Number(process.hrtime.bigint() - t0);
  };
  let n = 1000;
  once(n);
  while (once(n) < 20e6) n *= 2;
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    let ops = 0, ns = 0;
    while (ns < (ms * 1e6) / 3) { ns += once(n); ops += n; }
    best = Math.min(best, ns / ops);
  }
  console.log(`${name.padEnd(52)} ${Math.round(best).toString().padStart(7)} ns/op`);
  return best;
}

/** Keeps results observable so the JIT cannot drop the benchmarked work. */
export function microSink(): number { return sink; }

export interface BenchResult { name: string; opsPerSec: number; nsPerOp: number }

/** CPU time of this process in ns: unlike wall time, it does not count time other processes ran. */
function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/**
 * Run `fn` in growing batches until ~`ms` of measured time; report the best of three rounds. Measured
 * in process CPU time, so a busy machine (other test runs) skews the figures less.
 */
export function cpuBench(name: string, fn: () => unknown, ms = 300): BenchResult {
  const once = (n: number): number => {
    const t0 = cpuNs();
    for (let i = 0; i < n; i++) { const r = fn(); if (r) sink++; }
    return cpuNs() - t0;
  };
  let n = 1000;
  once(n); // warm up (JIT)
  while (once(n) < 20e6) n *= 2;
  const batch = n;
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    let ops = 0, ns = 0;
    while (ns < (ms * 1e6) / 3) { ns += once(batch); ops += batch; }
    best = Math.min(best, ns / ops);
  }
  return { name, opsPerSec: Math.round(1e9 / best), nsPerOp: Math.round(best) };
}

export function printTable(rows: BenchResult[]): void {
  const w = Math.max(...rows.map((r) => r.name.length));
  console.log(`${'benchmark'.padEnd(w)}  ${'ops/s'.padStart(12)}  ${'ns/op'.padStart(8)}`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(w)}  ${r.opsPerSec.toLocaleString('en-US').padStart(12)}  ${String(r.nsPerOp).padStart(8)}`);
  }
}
