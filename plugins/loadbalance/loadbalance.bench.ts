// Micro-benchmark of loadbalance on a reply with prebuilt wire: `node plugins/loadbalance/loadbalance.bench.ts`.
// Compares the copy the server does anyway (writePrebuilt) with shuffling first (bytes moved in a copy
// of the wire) and with the fallback (wire dropped, reply encoded again).
import { encode } from '../../src/dns/codec.ts';
import { parseQuery, type ParsedQuery } from '../../src/dns/query.ts';
import { type Msg, Type } from '../../src/dns/types.ts';
import { prebuild, writePrebuilt } from '../../src/dns/wire.ts';
import { Request } from '../../src/request.ts';
import { queryBytes } from '../../test/helpers.ts';
import { balance } from './loadbalance.ts';
import { microBench, microSink } from '../../test/bench/micro.ts';

const bench = microBench;

const qname = 'web.default.svc.cluster.local.';
const raw = queryBytes(qname, Type.A, { edns: { udpSize: 1232 } });
const q = parseQuery(raw) as ParsedQuery;
const req = new Request(q, raw, 'udp', '10.0.0.1', 4000, 'dns://:53');
const opt = { udpSize: 1232, do: false };

for (const n of [2, 4, 16]) {
  const m: Msg = req.reply();
  m.flags.aa = true;
  for (let i = 0; i < n; i++) m.answer.push({ name: qname, type: Type.A, class: 1, ttl: 30, data: `10.244.0.${i + 1}` });
  m.wire = prebuild(m);
  const wire = m.wire;
  bench(`${n} A: writePrebuilt only`, () => writePrebuilt(wire, q, raw, opt, 1232));
  bench(`${n} A: balance + writePrebuilt (wire moved)`, () => writePrebuilt(balance(m, null).wire!, q, raw, opt, 1232));
  bench(`${n} A: balance + encode (wire dropped)`, () => { const b = balance(m, null); b.wire = undefined; return encode(b, 1232); });
}
if (microSink() < 0) console.log(microSink());
