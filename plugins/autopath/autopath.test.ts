// autopath against a fake pod-namespace source and a scripted `next`: which names are asked, in what
// order, and what the client gets back.
import { describe, expect, it } from 'vitest';
import { makeRequest, rr, serve, sortAndCheck } from '../../test/helpers.ts';
import { Metrics } from '../../src/metrics.ts';
import { type Msg, Rcode, Type, typeName } from '../../src/dns/types.ts';
import { DnsError, type Next } from '../../src/plugin.ts';
import type { Request } from '../../src/request.ts';
import { AutoPath, type PodNamespaces, type SearchSource, baseEndOf, podSearch, searchFromResolvConf, toWire } from './autopath.ts';

const POD = '10.244.0.7';
const OTHER_POD = '10.244.1.9';
const SOA = 'cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 5';

/** A pod watch: two pods, in `default` and `other-ns`. */
const pods: PodNamespaces = {
  zones: ['cluster.local.', 'in-addr.arpa.', 'ip6.arpa.'],
  namespaceOfIP: (ip) => ({ [POD]: 'default', [OTHER_POD]: 'other-ns' } as Record<string, string>)[ip],
};

type Zone = Record<string, string[] | 'nodata'>;

/** The cluster and the internet as `next` sees them: "name type" → answer lines; the rest NXDOMAIN. */
const world: Zone = {
  'my-svc.default.svc.cluster.local. A': ['my-svc.default.svc.cluster.local. 5 IN A 10.96.0.10'],
  'my-svc.other-ns.svc.cluster.local. A': ['my-svc.other-ns.svc.cluster.local. 5 IN A 10.96.0.20'],
  'my-svc.other-ns.svc.cluster.local. AAAA': 'nodata',
  '10-244-0-7.default.pod.cluster.local. A': ['10-244-0-7.default.pod.cluster.local. 5 IN A 10.244.0.7'],
  'example.com. A': ['example.com. 300 IN A 93.184.216.34'],
  'example.com. AAAA': 'nodata',
  '_http._tcp.web.svc.cluster.local. SRV': ['_http._tcp.web.svc.cluster.local. 5 IN SRV 0 100 80 web.svc.cluster.local.'],
};

interface Script { next: Next; asked: string[]; reqs: Request[] }

/** A terminal `next` answering from `zone`, recording every name asked. Replies are frozen (shared). */
function scripted(zone: Zone = world, opts: { async?: boolean; override?: (req: Request) => Msg | undefined } = {}): Script {
  const asked: string[] = [];
  const reqs: Request[] = [];
  const answer = (req: Request): Msg => {
    asked.push(req.qname);
    reqs.push(req);
    const o = opts.override?.(req);
    if (o) return o;
    const hit = zone[`${req.name} ${typeName(req.qtype)}`];
    const m = req.reply(hit === undefined ? Rcode.NXDOMAIN : Rcode.NOERROR);
    m.flags.aa = true;
    if (Array.isArray(hit)) m.answer = hit.map(rr);
    else m.authority = [rr(SOA)];
    return Object.freeze(m);
  };
  const next: Next = opts.async ? (req) => Promise.resolve().then(() => answer(req)) : answer;
  return { next, asked, reqs };
}

function autopath(source: SearchSource = { kind: 'pods', pods, hostSearch: [] }, zones = ['.']) {
  const metrics = new Metrics();
  const success = metrics.fastCounter('coredns_autopath_success_total', 'Counter of requests that did autopath.', ['server']);
  const h = new AutoPath({ zones, source, success });
  const count = async () => {
    const text = await metrics.text();
    expect(text).not.toMatch(/coredns_autopath_success_total\{server="(?!dns:\/\/:53")/);
    return success.get().values.reduce((n, v) => n + v.value, 0);
  };
  return { h, metrics, count };
}

describe('autopath @kubernetes', () => {
  it('completes an external name: svc, cluster.local, then the bare name wins', async () => {
    const { h, count } = autopath();
    const s = scripted();
    const m = await serve(h, makeRequest('example.com.default.svc.cluster.local.', Type.A, { remote: POD }), s.next);
    expect(s.asked).toEqual([
      'example.com.default.svc.cluster.local.', 'example.com.svc.cluster.local.', 'example.com.cluster.local.', 'example.com.',
    ]);
    sortAndCheck(m, {
      rcode: Rcode.NOERROR,
      answer: ['example.com.default.svc.cluster.local. 300 IN CNAME example.com.', 'example.com. 300 IN A 93.184.216.34'],
    });
    expect(m.answer[0]!.type).toBe(Type.CNAME); // the CNAME comes first
    expect(m.question[0]!.name).toBe('example.com.default.svc.cluster.local.');
    expect(m.wire).toBeUndefined();
    expect(await count()).toBe(1);
  });

  it('completes a namespace-qualified name via svc.<zone>', async () => {
    const { h, count } = autopath();
    const s = scripted();
    const m = await serve(h, makeRequest('my-svc.other-ns.default.svc.cluster.local.', Type.A, { remote: POD }), s.next);
    expect(s.asked).toEqual(['my-svc.other-ns.default.svc.cluster.local.', 'my-svc.other-ns.svc.cluster.local.']);
    sortAndCheck(m, {
      rcode: Rcode.NOERROR,
      answer: [
        'my-svc.other-ns.default.svc.cluster.local. 5 IN CNAME my-svc.other-ns.svc.cluster.local.',
        'my-svc.other-ns.svc.cluster.local. 5 IN A 10.96.0.20',
      ],
    });
    expect(m.flags.aa).toBe(true);
    expect(await count()).toBe(1);
  });

  it('completes via <zone>', async () => {
    const { h } = autopath();
    const s = scripted();
    const m = await serve(h, makeRequest('10-244-0-7.default.pod.default.svc.cluster.local.', Type.A, { remote: POD }), s.next);
    expect(s.asked).toHaveLength(3);
    sortAndCheck(m, {
      rcode: Rcode.NOERROR,
      answer: [
        '10-244-0-7.default.pod.default.svc.cluster.local. 5 IN CNAME 10-244-0-7.default.pod.cluster.local.',
        '10-244-0-7.default.pod.cluster.local. 5 IN A 10.244.0.7',
      ],
    });
  });

  it('returns the reply to the name as asked when it exists (no CNAME), and counts it as CoreDNS does', async () => {
    const { h, count } = autopath();
    const s = scripted();
    const req = makeRequest('my-svc.default.svc.cluster.local.', Type.A, { remote: POD });
    const m = await serve(h, req, s.next);
    expect(s.reqs).toEqual([req]); // the client's own request, not a copy
    sortAndCheck(m, { rcode: Rcode.NOERROR, answer: ['my-svc.default.svc.cluster.local. 5 IN A 10.96.0.10'] });
    expect(await count()).toBe(1);
  });

  it('answers the original NXDOMAIN when every name is NXDOMAIN, and counts nothing', async () => {
    const { h, count } = autopath();
    let first: Msg | undefined;
    const s = scripted(world, { override: (r) => { if (!first) { first = Object.freeze({ ...r.reply(Rcode.NXDOMAIN), authority: [rr(SOA)] }); return first; } return undefined; } });
    const m = await serve(h, makeRequest('nothing.here.default.svc.cluster.local.', Type.A, { remote: POD }), s.next);
    expect(s.asked).toEqual([
      'nothing.here.default.svc.cluster.local.', 'nothing.here.svc.cluster.local.', 'nothing.here.cluster.local.', 'nothing.here.',
    ]);
    expect(m).toBe(first);
    expect(await count()).toBe(0);
  });

  it('stops at NODATA like CoreDNS (first non-NXDOMAIN), with a CNAME and the negative TTL', async () => {
    const { h } = autopath();
    const s = scripted();
    const m = await serve(h, makeRequest('example.com.default.svc.cluster.local.', Type.AAAA, { remote: POD }), s.next);
    expect(s.asked.at(-1)).toBe('example.com.');
    sortAndCheck(m, { rcode: Rcode.NOERROR, answer: ['example.com.default.svc.cluster.local. 5 IN CNAME example.com.'], ns: [SOA] });
  });

  it('completes SRV too (CoreDNS completes every type)', async () => {
    const { h } = autopath();
    const s = scripted();
    const m = await serve(h, makeRequest('_http._tcp.web.default.svc.cluster.local.', Type.SRV, { remote: POD }), s.next);
    sortAndCheck(m, {
      rcode: Rcode.NOERROR,
      answer: [
        '_http._tcp.web.default.svc.cluster.local. 5 IN CNAME _http._tcp.web.svc.cluster.local.',
        '_http._tcp.web.svc.cluster.local. 5 IN SRV 0 100 80 web.svc.cluster.local.',
      ],
    });
  });

  describe('leaves the query alone (next gets the same request, once)', () => {
    const untouched: Array<[string, string, number, string]> = [
      ['unknown client address', 'example.com.default.svc.cluster.local.', Type.A, '10.1.2.3'],
      ['a node / host-network address', 'example.com.default.svc.cluster.local.', Type.A, '192.168.1.10'],
      ['namespace of the address is not the first search domain', 'example.com.default.svc.cluster.local.', Type.A, OTHER_POD],
      ['a second search domain (the client is already walking)', 'example.com.svc.cluster.local.', Type.A, POD],
      ['a name outside the cluster', 'example.com.', Type.A, POD],
      ['the first search domain itself (no base name)', 'default.svc.cluster.local.', Type.A, POD],
      ['CNAME queries', 'example.com.default.svc.cluster.local.', Type.CNAME, POD],
      ['ANY queries', 'example.com.default.svc.cluster.local.', Type.ANY, POD],
      ['AXFR', 'example.com.default.svc.cluster.local.', Type.AXFR, POD],
      ['a reverse name', '7.0.244.10.in-addr.arpa.', Type.PTR, POD],
    ];
    it.each(untouched)('%s', async (_why, name, type, remote) => {
      const { h, count } = autopath();
      const s = scripted();
      const req = makeRequest(name, type, { remote });
      await serve(h, req, s.next);
      expect(s.reqs).toHaveLength(1);
      expect(s.reqs[0]).toBe(req);
      expect(await count()).toBe(0);
    });

    it('names outside ZONES', async () => {
      const { h } = autopath(undefined, ['example.org.']);
      const s = scripted();
      const req = makeRequest('example.com.default.svc.cluster.local.', Type.A, { remote: POD });
      await serve(h, req, s.next);
      expect(s.reqs).toEqual([req]);
    });

    it('until the peer is known (before startup)', async () => {
      let known: PodNamespaces | undefined;
      const { h } = autopath({ kind: 'pods', pods: () => known, hostSearch: [] });
      const s = scripted();
      await serve(h, makeRequest('example.com.default.svc.cluster.local.', Type.A, { remote: POD }), s.next);
      expect(s.asked).toHaveLength(1);
      known = pods;
      await serve(h, makeRequest('example.com.default.svc.cluster.local.', Type.A, { remote: POD }), s.next);
      expect(s.asked).toHaveLength(5);
    });

    it('a label that only looks like the namespace (escaped dot)', async () => {
      const { h } = autopath({ kind: 'pods', pods: { zones: ['cluster.local.'], namespaceOfIP: () => 'b' }, hostSearch: [] });
      const s = scripted();
      // One label "a.b" (dot inside), then svc.cluster.local: the text ends in ".b.svc.cluster.local.".
      const raw = makeRequest('x.svc.cluster.local.', Type.A, { remote: POD });
      const bytes = Uint8Array.from([...raw.raw.subarray(0, 12), 3, 0x61, 0x2e, 0x62, ...raw.raw.subarray(14)]);
      const { parseQuery } = await import('../../src/dns/query.ts');
      const q = parseQuery(bytes);
      if ('kind' in q) throw new Error(q.reason);
      const { Request } = await import('../../src/request.ts');
      const req = new Request(q, bytes, 'udp', POD, 4000, 'dns://:53');
      expect(req.qname).toBe('a\\.b.svc.cluster.local.');
      await serve(h, req, s.next);
      expect(s.reqs).toEqual([req]);
    });
  });

  it('accepts an IPv4 client seen through a dual-stack socket', async () => {
    const { h } = autopath();
    const s = scripted();
    await serve(h, makeRequest('example.com.default.svc.cluster.local.', Type.A, { remote: `::ffff:${POD}` }), s.next);
    expect(s.asked).toHaveLength(4);
  });

  it('keeps the client letter case, ID, RD, EDNS and DO in the queries it derives', async () => {
    const { h } = autopath();
    const s = scripted();
    const m = await serve(h, makeRequest('Example.COM.default.svc.cluster.local.', Type.A,
      { remote: POD, id: 0x4242, edns: { udpSize: 4096, do: true } }), s.next);
    expect(s.asked).toEqual([
      'Example.COM.default.svc.cluster.local.', 'Example.COM.svc.cluster.local.', 'Example.COM.cluster.local.', 'Example.COM.',
    ]);
    for (const r of s.reqs) {
      expect(r.id).toBe(0x4242);
      expect(r.do).toBe(true);
      expect(r.query.flags & 0x0100).toBe(0x0100);
      expect(r.remoteAddress).toBe(POD);
      expect(r.size).toBe(s.reqs[0]!.size);
    }
    expect(m.answer[0]).toMatchObject({ name: 'Example.COM.default.svc.cluster.local.', type: Type.CNAME, data: 'Example.COM.' });
  });

  it('works the same with an asynchronous next, and stays synchronous with a synchronous one', async () => {
    const { h } = autopath();
    const sync = h.serveDNS(makeRequest('my-svc.other-ns.default.svc.cluster.local.', Type.A, { remote: POD }), scripted().next);
    expect(sync).not.toBeInstanceOf(Promise);
    const s = scripted(world, { async: true });
    const r = h.serveDNS(makeRequest('example.com.default.svc.cluster.local.', Type.A, { remote: POD }), s.next);
    expect(r).toBeInstanceOf(Promise);
    sortAndCheck(await r, {
      rcode: Rcode.NOERROR,
      answer: ['example.com.default.svc.cluster.local. 300 IN CNAME example.com.', 'example.com. 300 IN A 93.184.216.34'],
    });
    expect(s.asked).toHaveLength(4);
  });

  it('gives up on SERVFAIL or an error later in the walk: the client gets its own answer', async () => {
    for (const fail of ['servfail', 'throw', 'reject'] as const) {
      const { h, count } = autopath();
      const s = scripted(world, {
        async: fail === 'reject',
        override: (r) => {
          if (r.name !== 'example.com.svc.cluster.local.') return undefined;
          if (fail === 'servfail') return r.reply(Rcode.SERVFAIL);
          throw new DnsError(Rcode.SERVFAIL, 'forward', 'timeout');
        },
      });
      const m = await serve(h, makeRequest('example.com.default.svc.cluster.local.', Type.A, { remote: POD }), s.next);
      expect(s.asked, fail).toHaveLength(2);
      expect(m.rcode, fail).toBe(Rcode.NXDOMAIN);
      expect(m.question[0]!.name).toBe('example.com.default.svc.cluster.local.');
      expect(await count()).toBe(0);
    }
  });

  it('passes an error on the query as asked through, as without autopath', async () => {
    const { h } = autopath();
    const s = scripted(world, { override: () => { throw new DnsError(Rcode.REFUSED, 'x'); } });
    await expect(serve(h, makeRequest('example.com.default.svc.cluster.local.', Type.A, { remote: POD }), s.next)).rejects.toThrow(DnsError);
  });

  it('never mutates the shared reply it builds on, and carries its TTL age', async () => {
    const { h } = autopath();
    const shared = Object.freeze({
      ...makeRequest('example.com.', Type.A).reply(), answer: Object.freeze([rr('example.com. 300 IN A 93.184.216.34')]) as never, ttlDelta: 100,
    });
    const s = scripted(world, { override: (r) => (r.name === 'example.com.' ? shared : undefined) });
    const m = await serve(h, makeRequest('example.com.default.svc.cluster.local.', Type.A, { remote: POD }), s.next);
    expect(m).not.toBe(shared);
    expect(shared.answer).toHaveLength(1);
    expect(m.ttlDelta).toBe(100);
    expect(m.answer[0]!.ttl).toBe(300); // aged by the server with the rest: 200 on the wire
  });

  it('skips a candidate that would be longer than 255 octets', async () => {
    const { h } = autopath({ kind: 'pods', pods, hostSearch: [`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.`] });
    const s = scripted();
    const long = `${'x'.repeat(40)}.${'y'.repeat(40)}.default.svc.cluster.local.`;
    await serve(h, makeRequest(long, Type.A, { remote: POD }), s.next);
    // The host domain is skipped, the bare name still asked.
    expect(s.asked.map((n) => n.slice(82))).toEqual(['default.svc.cluster.local.', 'svc.cluster.local.', 'cluster.local.', '']);
  });

  it('walks the host search domains after the cluster ones, without repeats', async () => {
    const { h } = autopath({ kind: 'pods', pods, hostSearch: ['corp.example.', 'cluster.local.'] });
    const s = scripted();
    await serve(h, makeRequest('wiki.default.svc.cluster.local.', Type.A, { remote: POD }), s.next);
    expect(s.asked).toEqual([
      'wiki.default.svc.cluster.local.', 'wiki.svc.cluster.local.', 'wiki.cluster.local.', 'wiki.corp.example.', 'wiki.',
    ]);
  });
});

describe('autopath RESOLV-CONF', () => {
  const source: SearchSource = { kind: 'static', search: ['a.example.', 'b.example.', '.'] };

  it('walks the file search list for every client', async () => {
    const { h } = autopath(source);
    const s = scripted({ 'www.b.example. A': ['www.b.example. 60 IN A 192.0.2.1'] });
    const m = await serve(h, makeRequest('www.a.example.', Type.A, { remote: '192.0.2.200' }), s.next);
    expect(s.asked).toEqual(['www.a.example.', 'www.b.example.']);
    sortAndCheck(m, { rcode: Rcode.NOERROR, answer: ['www.a.example. 60 IN CNAME www.b.example.', 'www.b.example. 60 IN A 192.0.2.1'] });
  });

  it('leaves names not in the first search domain alone', async () => {
    const { h } = autopath(source);
    const s = scripted();
    await serve(h, makeRequest('www.b.example.', Type.A), s.next);
    await serve(h, makeRequest('www.xa.example.', Type.A), s.next);
    expect(s.asked).toEqual(['www.b.example.', 'www.xa.example.']);
  });
});

describe('helpers', () => {
  it('podSearch builds the kubelet order and skips repeats', () => {
    expect(podSearch('ns', 'cluster.local.', ['cluster.local.', 'corp.'])).toEqual(['ns.svc.cluster.local.', 'svc.cluster.local.', 'cluster.local.', 'corp.', '.']);
    expect(podSearch('ns', '.', [])).toEqual(['ns.svc.', 'svc.', '.']);
  });

  it('searchFromResolvConf: last search/domain line wins, names canonical', () => {
    expect(searchFromResolvConf('nameserver 10.0.0.10\nsearch Default.svc.cluster.local svc.cluster.local. cluster.local\noptions ndots:5\n'))
      .toEqual(['default.svc.cluster.local.', 'svc.cluster.local.', 'cluster.local.']);
    expect(searchFromResolvConf('search a b\ndomain c.example\n')).toEqual(['c.example.']);
    expect(searchFromResolvConf('domain c.example\nsearch a b\n')).toEqual(['a.', 'b.']);
    expect(searchFromResolvConf('nameserver 1.1.1.1\n')).toEqual([]);
  });

  it('baseEndOf finds the base on a label boundary, ignoring case', () => {
    const req = makeRequest('Foo.Default.SVC.cluster.local.', Type.A);
    expect(baseEndOf(req, toWire('default.svc.cluster.local.'))).toBe(12 + 4);
    expect(baseEndOf(req, toWire('efault.svc.cluster.local.'))).toBe(-1);
    expect(baseEndOf(req, toWire('foo.default.svc.cluster.local.'))).toBe(-1); // no base left
  });
});
