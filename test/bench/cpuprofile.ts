// Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time per function, highest first.
//
//   node test/bench/cpuprofile.ts FILE.cpuprofile [N]
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { repoRoot } from './proc.ts';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }; hitCount?: number }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface SelfTime { fn: string; where: string; ms: number; pct: number }

/** Self time per function (summed over call sites), as a share of non-idle time. */
export function topSelfTime(file: string, n = 10): { top: SelfTime[]; busyMs: number; idleMs: number } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const perNode = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute the gap after a sample to it, as DevTools does.
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    perNode.set(p.samples[i]!, (perNode.get(p.samples[i]!) ?? 0) + dt);
  }
  const perFn = new Map<string, SelfTime>();
  let busy = 0;
  let idle = 0;
  for (const [id, ms] of perNode) {
    const cf = byId.get(id)!.callFrame;
    if (cf.functionName === '(idle)') { idle += ms; continue; }
    busy += ms;
    let where = cf.url;
    if (where.startsWith('file://')) {
      const path = fileURLToPath(where);
      where = path.startsWith(repoRoot) ? relative(repoRoot, path) : path;
    }
    if (where) where += `:${cf.lineNumber + 1}`;
    const fn = cf.functionName || '(anonymous)';
    const key = `${fn} ${where}`;
    const e = perFn.get(key) ?? { fn, where, ms: 0, pct: 0 };
    e.ms += ms;
    perFn.set(key, e);
  }
  const top = [...perFn.values()].sort((a, b) => b.ms - a.ms).slice(0, n);
  for (const t of top) t.pct = busy > 0 ? (100 * t.ms) / busy : 0;
  return { top, busyMs: busy, idleMs: idle };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { top, busyMs, idleMs } = topSelfTime(process.argv[2]!, Number(process.argv[3] ?? 20));
  process.stdout.write(`busy ${busyMs.toFixed(0)} ms, idle ${idleMs.toFixed(0)} ms\n| self ms | % of busy | function | where |\n|---|---|---|---|\n`);
  for (const t of top) process.stdout.write(`| ${t.ms.toFixed(0)} | ${t.pct.toFixed(1)} | ${t.fn} | ${t.where} |\n`);
}
