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

export function printTable(rows: BenchResult[]): void {
  const w = Math.max(...rows.map((r) => r.name.length));
  console.log(`${'benchmark'.padEnd(w)}  ${'ops/s'.padStart(12)}  ${'ns/op'.padStart(8)}`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(w)}  ${r.opsPerSec.toLocaleString('en-US').padStart(12)}  ${String(r.nsPerOp).padStart(8)}`);
  }
}
