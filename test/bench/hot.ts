// Micro-benchmarks of the functions every query runs through, beside the codec's (codec.ts) and the
// cache's (cache.ts): name lookup (routing to a server block, the kubernetes handler's reply cache and
// a miss resolved from the zone), the metrics update after each reply, and loadbalance's shuffle.
// `node test/bench/hot.ts` prints a table; `npm run bench -- micro` puts it in docs/performance.md.
import { pathToFileURL } from 'node:url';
import { cpuBench, printTable, type BenchResult } from './micro.ts';
import { benchCache } from './cache.ts';
import { prebuild } from '../../src/dns/wire.ts';
import { emptyFlags, Type, type Msg } from '../../src/dns/types.ts';
import { Metrics } from '../../src/metrics.ts';
import { Router, type BlockRuntime } from '../../src/server/pipeline.ts';
import { ZoneStats, serverMetricFamilies } from '../../src/server/stats.ts';
import { defaultConfig } from '../../plugins/kubernetes/config.ts';
import { KubernetesHandler } from '../../plugins/kubernetes/kubernetes.ts';
import { KubeZone } from '../../plugins/kubernetes/zone.ts';
import { balance, shuffleRuns } from '../../plugins/loadbalance/loadbalance.ts';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import { buildQuery } from '../../src/dns/build.ts';
import { writePrebuilt } from '../../src/dns/wire.ts';
import { ReplyMemo, type MemoTerms } from '../../src/server/memo.ts';

export async function benchHot(): Promise<BenchResult[]> {
  // A 1,000-Service zone, as the throughput bench's (800 ClusterIP, 200 headless with 4 endpoints).
  const zone = new KubeZone({ implicitNamespaces: true });
  for (let i = 0; i < 1000; i++) {
    const headless = i % 5 === 4;
    zone.upsertService({
      namespace: `ns${i % 20}`, name: `svc-${i}`, type: 'ClusterIP', clusterIPs: headless ? [] : [`10.96.${i >> 8}.${i & 255}`],
      externalName: '', ports: [{ name: 'http', port: 80, protocol: 'TCP' }], publishNotReadyAddresses: false,
    });
  }
  const handler = new KubernetesHandler(defaultConfig(['cluster.local.']), zone, { prebuild, freeze: false });
  const names = Array.from({ length: 1000 }, (_, i) => `svc-${i}.ns${i % 20}.svc.cluster.local.`);
  for (const n of names) handler.reply(n, Type.A);
  let i = 0, k = 0;

  const block = (index: number, zones: string[]): BlockRuntime => ({ index, zones, chain: null, responseObservers: [], errorObservers: [], metrics: true, memo: false });
  const b0 = block(0, ['cluster.local.', 'in-addr.arpa.', 'ip6.arpa.']);
  const b1 = block(1, ['.']);
  const router = new Router([
    ...b0.zones.map((zone) => ({ zone, block: b0, stats: null })),
    { zone: '.', block: b1, stats: null },
  ]);

  const stats = new ZoneStats(serverMetricFamilies(new Metrics()), 'dns://:53', '.');
  const types = [Type.A, Type.A, Type.A, Type.A, Type.A, Type.A, Type.A, Type.SRV, Type.AAAA, Type.A];

  const addrs = (n: number): Msg => ({
    id: 0, opcode: 0, rcode: 0, flags: { ...emptyFlags(), qr: true, aa: true, rd: true },
    question: [{ name: 'web.shop.svc.cluster.local.', type: Type.A, class: 1 }],
    answer: Array.from({ length: n }, (_, j) => ({ name: 'web.shop.svc.cluster.local.', type: Type.A, class: 1, ttl: 30, data: `10.244.${j >> 8}.${j & 255}` })),
    authority: [], additional: [], edns: null,
  });
  const one = addrs(1); one.wire = prebuild(one);
  const twenty = addrs(20); twenty.wire = prebuild(twenty);

  // The reply memo: 1,000 questions kept (1,000 ClusterIP-style replies), looked up in turn.
  const memo = new ReplyMemo(1232);
  const terms = (o: Partial<MemoTerms> = {}): MemoTerms => ({
    memoOff: false, memoUntil: Infinity, memoDep: undefined, memoHit: undefined, memoShuffle: undefined, memoAgeFrom: NaN, memoAgeDelta: 0, ...o,
  });
  const keep = (m: ReplyMemo, raw: Uint8Array, msg: Msg, t: MemoTerms) => {
    const reply = writePrebuilt(msg.wire!, parseQuery(raw) as ParsedQuery, raw, null, 512)!.slice();
    for (let r = 0; r < 2; r++) m.offer(raw, false, t, performance.now(), reply, null, Type.A, 0, 'kubernetes', msg.wire!.ttlOffsets);
  };
  const queries = names.map((n) => buildQuery(n, Type.A));
  for (let j = 0; j < 1000; j++) {
    const e = handler.entry(names[j]!, Type.A);
    keep(memo, queries[j]!, e.msg, terms({ memoDep: e }));
  }
  const four = addrs(4); four.wire = prebuild(four);
  const shuffled = new ReplyMemo(1232);
  const qWeb = buildQuery('web.shop.svc.cluster.local.', Type.A);
  keep(shuffled, qWeb, four, terms({ memoShuffle: shuffleRuns(four) }));
  const aged = new ReplyMemo(1232);
  keep(aged, qWeb, one, terms({ memoAgeFrom: performance.now() - 5_500, memoAgeDelta: 5, memoHit: () => undefined }));
  const unknown = Array.from({ length: 1000 }, (_, j) => buildQuery(`nope-${j}.ns1.svc.cluster.local.`, Type.A));
  const t0 = performance.now();

  const rows = [
    cpuBench('reply memo: hit (1,000 kept, validity checked)', () => memo.lookup(queries[i++ % 1000]!, false, t0)),
    cpuBench('reply memo: hit, 4 A shuffled', () => shuffled.lookup(qWeb, false, t0)),
    cpuBench('reply memo: hit, TTLs aged (cache), hit counter', () => aged.lookup(qWeb, false, t0)),
    cpuBench('reply memo: miss (scan + hash, nothing kept)', () => memo.lookup(unknown[i++ % 1000]!, false, t0)),
    cpuBench('name lookup: route to a server block (3 zones + root)', () => router.match(names[i++ % 1000]!)),
    cpuBench('name lookup: kubernetes reply, cached (gen check)', () => handler.reply(names[i++ % 1000]!, Type.A)),
    cpuBench('name lookup: kubernetes reply, miss (resolve + prebuild, NXDOMAIN)', () => handler.reply(`x${k++}.ns1.svc.cluster.local.`, Type.A)),
    cpuBench('metrics update: ZoneStats.record (7 series, 3 histograms)', () => {
      stats.record('udp', 4, types[i++ % 10]!, false, 1232, 0, 'kubernetes', 90, 0.00005);
      return 0;
    }),
    cpuBench('loadbalance: 1 A (nothing to move)', () => balance(one, null)),
    cpuBench('loadbalance: 20 A (shuffle, wire bytes moved)', () => balance(twenty, null)),
  ];
  return [...rows, ...(await benchCache())];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  printTable(await benchHot());
}
