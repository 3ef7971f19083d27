// Micro-benchmark of the kubernetes plugin with workers: `node plugins/kubernetes/remote.bench.ts`.
// Hit: a worker's cached reply checked against the shared counters, beside the single-threaded
// handler's hit. Miss: what main does for a worker per reply (resolve, prebuild, stamp, pack), the
// structured clone between threads and the worker's unpacking, beside resolving locally.
// (Thread wake-ups are not in here: test/bench/workers.ts measures the whole process.)
import { prebuild } from '../../src/dns/wire.ts';
import { Type } from '../../src/dns/types.ts';
import { defaultConfig } from './config.ts';
import { KubernetesHandler } from './kubernetes.ts';
import { RemoteZone, unpackReplies, zoneService, type RepliesAnswer } from './remote.ts';
import { SlotReader, SlotTable } from './slots.ts';
import { KubeZone } from './zone.ts';
import { microBench, microSink } from '../../test/bench/micro.ts';

const bench = microBench;

const zone = new KubeZone({ implicitNamespaces: true });
for (let i = 0; i < 1000; i++) {
  zone.upsertService({ namespace: `ns${i % 20}`, name: `svc-${i}`, type: 'ClusterIP', clusterIPs: [`10.96.${i >> 8}.${i & 255}`], externalName: '', ports: [], publishNotReadyAddresses: false });
}
const cfg = defaultConfig(['cluster.local.']);
const local = new KubernetesHandler(cfg, zone, { prebuild, freeze: false });
const table = new SlotTable();
zone.shareChanges(table);
const service = zoneService(local, table);
const names = Array.from({ length: 1000 }, (_, i) => `svc-${i}.ns${i % 20}.svc.cluster.local.`);

// A worker whose calls are answered in this thread (clone included), to fill its cache.
const remote = new RemoteZone(new SlotReader(table.buffer), async (body) => structuredClone(service.handle(body)), { freeze: false });
await Promise.all(names.map((n) => remote.reply(n, Type.A)));

let i = 0;
bench('hit: single-threaded handler (cache + gen check)', () => local.reply(names[i++ % 1000]!, Type.A));
bench('hit: worker RemoteZone (cache + Atomics.load of stamps)', () => remote.reply(names[i++ % 1000]!, Type.A));

let k = 0;
const fresh = (n: number) => Array.from({ length: n }, () => `x${k++}.ns1.svc.cluster.local.`);
bench('miss: resolve + prebuild locally (NXDOMAIN)', () => local.reply(fresh(1)[0]!, Type.A));
for (const size of [1, 32]) {
  bench(`miss: main packs, clone, worker unpacks, batch of ${size} (per reply)`, () => {
    const batch = fresh(size);
    const a = structuredClone(service.handle({ op: 'replies', names: batch, types: batch.map(() => Type.A) })) as RepliesAnswer;
    return unpackReplies(a).length;
  }, 300);
}
console.log(`(per-reply figure for the batch of 32: divide by 32)${microSink() < 0 ? '' : ''}`);
