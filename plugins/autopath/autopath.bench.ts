// Micro-benchmark of autopath's cost per query: `node plugins/autopath/autopath.bench.ts`.
// The common case (a name that does not end in the client's first search domain) must cost one
// string test; the walk itself costs one derived query per search element tried.
import { Metrics } from '../../src/metrics.ts';
import { Rcode, Type } from '../../src/dns/types.ts';
import type { Next } from '../../src/plugin.ts';
import { makeRequest } from '../../test/helpers.ts';
import { AutoPath, type PodNamespaces } from './autopath.ts';
import { microBench, microSink } from '../../test/bench/micro.ts';

const bench = microBench;

const pods: PodNamespaces = { zones: ['cluster.local.', 'in-addr.arpa.', 'ip6.arpa.'], namespaceOfIP: (ip) => (ip === '10.244.0.7' ? 'default' : undefined) };
const success = new Metrics().fastCounter('coredns_autopath_success_total', 'bench', ['server']);
const h = new AutoPath({ zones: ['.'], source: { kind: 'pods', pods, hostSearch: [] }, success });
const answered = makeRequest('x.', Type.A).reply();
const nx = makeRequest('x.', Type.A).reply(Rcode.NXDOMAIN);
const next: Next = () => answered;
const nxThenBare: Next = (r) => (r.name === 'example.com.' ? answered : nx);

const external = makeRequest('example.com.', Type.A, { remote: '10.244.0.7' });
const otherNs = makeRequest('my-svc.other.svc.cluster.local.', Type.A, { remote: '10.244.0.7' });
const first = makeRequest('my-svc.default.svc.cluster.local.', Type.A, { remote: '10.244.0.7' });
const walk = makeRequest('example.com.default.svc.cluster.local.', Type.A, { remote: '10.244.0.7' });

bench('next alone', () => next(external));
bench('untouched: external name (one endsWith)', () => h.serveDNS(external, next));
bench('untouched: other namespace (endsWith + IP lookup)', () => h.serveDNS(otherNs, next));
bench('first search domain answers (no walk)', () => h.serveDNS(first, next));
bench('walk of 4 (3 derived queries, CNAME reply)', () => h.serveDNS(walk, nxThenBare));
if (microSink() < 0) console.log(microSink());
