// Micro-benchmarks of the cache plugin's query path. `node test/bench/cache.ts` prints a table; the
// bench runner may import benchCache(). A hit should cost about what answering from prebuilt zone
// bytes costs: compare "cache hit + writePrebuilt" with "Request + writePrebuilt of a prebuilt answer".
import { pathToFileURL } from 'node:url';
import { cpuBench, printTable, type BenchResult } from './micro.ts';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import { type Msg, Type } from '../../src/dns/types.ts';
import { prebuild, writePrebuilt } from '../../src/dns/wire.ts';
import type { Next } from '../../src/plugin.ts';
import { Request } from '../../src/request.ts';
import { Cache, defaultConfig } from '../../plugins/cache/index.ts';
import { queryBytes } from '../helpers.ts';

export type { BenchResult };

const bench = cpuBench;

/** A backend answering synchronously, as the kubernetes plugin does. */
const backend: Next = (req) => {
  const m = req.reply();
  m.flags.aa = true;
  m.answer.push({ name: req.qname, type: Type.A, class: 1, ttl: 30, data: '10.96.0.1' });
  return m;
};

export async function benchCache(): Promise<BenchResult[]> {
  const qname = 'kubernetes.default.svc.cluster.local.';
  const raw = queryBytes(qname, Type.A, { edns: { udpSize: 1232 } });
  const q = parseQuery(raw) as ParsedQuery;
  const opt = { udpSize: 1232, do: false };
  // As the server does: a new Request per query (so the lowercase name is computed each time).
  const request = (pq: ParsedQuery, bytes: Uint8Array) => new Request(pq, bytes, 'udp', '10.244.0.7', 40000, 'dns://:53');

  const warm = new Cache(defaultConfig(['.']));
  warm.serveDNS(request(q, raw), backend);
  const never: Next = () => { throw new Error('bench: a hit called next'); };

  // Misses: 4096 names through a 1024-entry LRU, so every lookup misses and every store evicts.
  const missCfg = defaultConfig(['.']);
  missCfg.success.capacity = 1024;
  const cold = new Cache(missCfg);
  const names = Array.from({ length: 4096 }, (_, i) => {
    const b = queryBytes(`svc${i}.ns${i & 31}.svc.cluster.local.`, Type.A, { edns: { udpSize: 1232 } });
    return { raw: b, q: parseQuery(b) as ParsedQuery };
  });
  let k = 0;

  const zone = backend(request(q, raw)) as Msg;
  const zoneWire = prebuild(zone);

  const results = [
    bench('cache hit (Request + key + lookup + reply)', () => warm.serveDNS(request(q, raw), never)),
    bench('cache hit + writePrebuilt (the server path)', () => {
      const req = request(q, raw);
      const m = warm.serveDNS(req, never) as Msg;
      return writePrebuilt(m.wire!, q, raw, opt, 1232, m.ttlDelta);
    }),
    bench('(ref) Request + writePrebuilt of a prebuilt answer', () => {
      const req = request(q, raw);
      return writePrebuilt(zoneWire, req.query, req.raw, opt, 1232);
    }),
    bench('(ref) writePrebuilt only', () => writePrebuilt(zoneWire, q, raw, opt, 1232)),
    bench('cache miss (sync backend, copy + prebuild + store)', () => {
      const n = names[k++ & 4095]!;
      return cold.serveDNS(request(n.q, n.raw), backend);
    }),
    bench('(ref) backend alone (no cache)', () => backend(request(q, raw))),
  ];
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  printTable(await benchCache());
}
