// The whole query path minus the socket: `node test/bench/pipeline.ts` (or `npm run bench -- pipeline`).
// A real runtime with the kubeadm Corefile over the bench's 1,000-Service zone answers the
// cluster-names mix through the listener's pipeline (parse, route, chain, metrics, finalize) with a
// send that only keeps the bytes. What this costs per query is what clusterdns adds to the Node UDP
// echo floor; it is measured as the best of three rounds of wall time, so other load on the machine
// lowers it far less than it lowers QPS.
import { rmSync } from 'node:fs';
import v8 from 'node:v8';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { handle, memoAnswered, memoReply } from '../../src/server/pipeline.ts';
import { startFromText } from '../../src/server/runtime.ts';
import { createLogger } from '../../src/log.ts';
import { buildQuery } from '../../src/dns/build.ts';
import { Type } from '../../src/dns/types.ts';
import { kubeadmCorefile } from './run.ts';
import { externalQueries, writeSmallCluster } from './cluster.ts';
import { startUpstream } from '../upstream.ts';
import { freePort, tempDir } from './proc.ts';

/**
 * CPU time (user+system of the process) per call, the best of 7 rounds of 200k calls after a warm-up:
 * on a shared machine wall time measures the neighbours as much as the code.
 */
function cpuBench(name: string, fn: () => unknown, calls = 200_000): number {
  for (let i = 0; i < calls; i++) fn();
  const rounds: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < calls; i++) fn();
    const d = process.cpuUsage(t0);
    rounds.push(((d.user + d.system) * 1000) / calls);
  }
  rounds.sort((a, b) => a - b);
  const median = rounds[0]!; // the least disturbed round
  console.log(`${name.padEnd(56)} ${Math.round(median).toString().padStart(6)} ns/query CPU, best of 7 (rounds ${Math.round(rounds[0]!)}-${Math.round(rounds[6]!)})`);
  return median;
}

/**
 * JS heap bytes allocated per call: the growth of the used heap over batches of 100 calls, ignoring
 * batches a collection ran in (the heap shrank); median of the rest. Every byte here is a byte the
 * young-generation collector has to sweep up: fewer bytes, fewer pauses.
 */
function allocBench(fn: () => unknown): number {
  const per: number[] = [];
  for (let b = 0; b < 2000 && per.length < 200; b++) {
    const h0 = v8.getHeapStatistics().used_heap_size;
    for (let i = 0; i < 100; i++) fn();
    const d = v8.getHeapStatistics().used_heap_size - h0;
    if (d >= 0) per.push(d / 100);
  }
  per.sort((a, b) => a - b);
  return per[Math.floor(per.length / 2)] ?? NaN;
}

export interface PipelineResult { name: string; nsPerQuery: number; bytesPerQuery: number }

export async function pipelineBench(): Promise<PipelineResult[]> {
  const dir = tempDir('pipeline');
  const cluster = writeSmallCluster(join(dir, 'cluster'));
  const ports = { dns: await freePort(), health: await freePort(), ready: await freePort(), metrics: await freePort() };
  // The upstream answers the external names once; after that the cache does. Cluster names never
  // reach it.
  const upstream = await startUpstream((q) => ({
    answer: [q.type === Type.AAAA ? `${q.qname} 300 IN AAAA 2001:db8::1` : `${q.qname} 300 IN A 192.0.2.1`],
  }));
  const corefile = kubeadmCorefile(ports, { source: `manifests ${cluster.dir}`, forwardTo: upstream.addr });
  const rt = await startFromText(corefile, { log: createLogger(() => {}), defaultPort: ports.dns, file: join(dir, 'Corefile') });
  const listener = rt.listeners[0];
  if (!listener) throw new Error('no listener');
  const ctx = listener.ctx;
  const types: Record<string, number> = { A: Type.A, AAAA: Type.AAAA, SRV: Type.SRV };
  // As dnsperf sends them: no EDNS.
  const wire = (lines: string[]) => lines.map((l) => { const [n, t] = l.split(' '); return buildQuery(`${n}.`, types[t!]!); });
  let last: Uint8Array | undefined;
  const send = (b: Uint8Array) => { last = b; };
  const results: PipelineResult[] = [];
  const mixes: Array<[string, Uint8Array[]]> = [
    ['cluster-names mix, kubeadm Corefile', wire(cluster.queries)],
    ['external names from cache, kubeadm Corefile', wire(externalQueries())],
  ];
  const memo = ctx.memo;
  for (const [label, queries] of mixes) {
    // The chain alone (memo off), then as the listener runs it: the reply memo first, handle() on a miss.
    ctx.memo = null;
    for (const raw of queries) await handle(ctx, raw, 'udp', '127.0.0.1', 40000, send, '127.0.0.1', ports.dns);
    let i = 0;
    const one = () => { handle(ctx, queries[i++ % queries.length]!, 'udp', '127.0.0.1', 40000, send, '127.0.0.1', ports.dns); return last; };
    const viaMemo = () => {
      const raw = queries[i++ % queries.length]!;
      const t0 = performance.now();
      const out = memoReply(ctx, raw, 'udp', t0);
      if (out === null) { handle(ctx, raw, 'udp', '127.0.0.1', 40000, send, '127.0.0.1', ports.dns); return last; }
      memoAnswered(ctx, 'udp', 4, raw.length, out.length, t0);
      return out;
    };
    for (const [name, fn] of [[`${label}: handle() to bytes`, one], [`${label}: reply memo, handle() on a miss`, viaMemo]] as const) {
      if (fn === viaMemo) {
        ctx.memo = memo;
        for (const raw of queries) await handle(ctx, raw, 'udp', '127.0.0.1', 40000, send, '127.0.0.1', ports.dns);
      }
      const nsPerQuery = cpuBench(name, fn);
      const bytesPerQuery = allocBench(fn);
      console.log(`${name.padEnd(56)} ${Math.round(bytesPerQuery).toString().padStart(6)} heap bytes allocated/query`);
      results.push({ name, nsPerQuery, bytesPerQuery });
    }
  }
  await upstream.close();
  // No rt.stop(): the Corefile's lameduck would hold it for 5 s; the process exits after the bench.
  rmSync(dir, { recursive: true, force: true });
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const results = await pipelineBench();
  if (process.argv.includes('--json')) process.stdout.write(`RESULTS ${JSON.stringify(results)}\n`);
  process.exit(0);
}
