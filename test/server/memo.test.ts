// The reply memo (src/server/memo.ts) served for real: a kubeadm-style Corefile over UDP and TCP on
// loopback, the kubernetes plugin fed by the test API server, forward pointed at a test upstream.
// Beside it runs the same Corefile with `-memo 0`: the chain's own answers, to compare bytes with.
import { kubeadmCorefile as kubeadm } from '../fixtures/kubeadm.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { decode } from '../../src/dns/codec.ts';
import { type Msg, Rcode, Type } from '../../src/dns/types.ts';
import { memoryLogger } from '../../src/log.ts';
import { main } from '../../src/main.ts';
import type { MemoCounts } from '../../src/server/memo.ts';
import { Runtime, startFromFile, startFromText } from '../../src/server/runtime.ts';
import { WorkerPool } from '../../src/server/workers.ts';
import { tcpConnect, tcpExchange, udpExchange } from '../client.ts';
import { queryBytes, type QueryOpts } from '../helpers.ts';
import { endpointSlice, headless, namespace, service } from '../kubeapi/objects.ts';
import { KubeApiServer } from '../kubeapi/server.ts';
import { pickPort, retryOnAddrInUse } from '../ports.ts';
import { type Responder, startUpstream, type Upstream } from '../upstream.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** A copy of `b` with another ID. */
function withId(b: Uint8Array, id: number): Uint8Array {
  const c = b.slice();
  c[0] = id >> 8;
  c[1] = id & 0xff;
  return c;
}

/** Sum of a metric's samples whose labels contain every `want` pair. */
function metric(text: string, name: string, want: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(want).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Every sample of the named metrics, by its full series line (labels included). */
function samples(text: string, names: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!names.some((n) => line.startsWith(`${n}{`))) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** Series that moved from `a` to `b`, and by how much. */
function moved(a: Map<string, number>, b: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of b) if (v !== (a.get(k) ?? 0)) out.set(k, v - (a.get(k) ?? 0));
  return out;
}

async function udp(port: number, bytes: Uint8Array): Promise<Uint8Array> {
  const r = await udpExchange(port, bytes, { timeoutMs: 3000 });
  expect(r, 'no reply').toBeDefined();
  return r!;
}

/** Poll `f` until it returns something (a short deadline: watch events arrive in milliseconds). */
async function until<T>(f: () => Promise<T | undefined>, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const addrs = (m: Msg) => m.answer.map((r) => String(r.data));

/** `m` with its SOA serials zeroed. */
function withoutSerial(m: Msg): Msg {
  return { ...m, authority: m.authority.map((r) => (r.type === Type.SOA ? { ...r, data: { ...(r.data as object), serial: 0 } } : r)) } as Msg;
}
const sorted = (xs: string[]) => [...xs].sort();

function kubeadmCorefile(kubeconfig: string, upstream: string): string {
  // The kubeadm Corefile itself (test/fixtures/kubeadm.ts), on loopback: health and ready left out
  // (nothing here reads them, and they are not in the query path), our API server and upstream.
  const out = kubeadm
    .replace('.:53 {', '.:0 {\n    bind 127.0.0.1')
    .replace(/    health \{\n\s+lameduck 5s\n\s+\}\n    ready\n/, '')
    .replace('pods insecure', `kubeconfig ${kubeconfig}\n       pods insecure`)
    .replace('prometheus :9153', 'prometheus 127.0.0.1:0')
    .replace('forward . /etc/resolv.conf', `forward . ${upstream}`);
  if (out.includes('health') || out.includes('/etc/resolv.conf') || !out.includes('kubeconfig')) throw new Error('kubeadm Corefile changed shape');
  return out;
}

/** The upstream: one external name, NXDOMAIN for the rest. */
const external: Responder = (q) => (q.name === 'ext.example.org.' && q.type === Type.A
  ? { answer: ['ext.example.org. 300 IN A 192.0.2.1'] }
  : { rcode: Rcode.NXDOMAIN });

const four = ['10.244.4.1', '10.244.4.2', '10.244.4.3', '10.244.4.4'];
const forty = Array.from({ length: 40 }, (_, i) => `10.244.40.${i + 1}`);

describe('reply memo: a kubeadm-style Corefile', () => {
  let api: KubeApiServer;
  let upstream: Upstream;
  let dir: string;
  let corefile: string;
  /** Memo on (the default). */
  let rt: Runtime;
  /** The same Corefile with the memo off: what the chain answers. */
  let ref: Runtime;
  let port: number;
  let refPort: number;
  const counts = (): MemoCounts => rt.listeners[0]!.ctx.memo!.counts;
  /** The same query to the chain (ref) and to the memo runtime, `times` times, with IDs 1, 2, ... */
  const both = async (name: string, type: number, o: QueryOpts = {}, times = 3) => {
    const chain = await udp(refPort, queryBytes(name, type, { ...o, id: 1 }));
    const replies: Uint8Array[] = [];
    for (let id = 1; id <= times; id++) replies.push(await udp(port, queryBytes(name, type, { ...o, id })));
    return { chain, replies };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'clusterdns-memo-'));
    api = await KubeApiServer.start();
    api.add(namespace('shop'));
    for (const [name, ip] of [['web', '10.96.7.7'], ['api', '10.96.7.8'], ['stats', '10.96.7.9'], ['moving', '10.96.50.1'], ['gone', '10.96.51.1']] as const) {
      api.add(service('shop', name, { clusterIP: ip, ports: [{ name: 'http', port: 80 }] }));
    }
    api.add(headless('shop', 'four', { ports: [{ name: 'http', port: 80 }] }));
    api.add(endpointSlice('shop', 'four', four.map((ip) => ({ ip, ready: true })), [{ name: 'http', port: 80 }]));
    api.add(headless('shop', 'big', { ports: [{ name: 'http', port: 80 }] }));
    api.add(endpointSlice('shop', 'big', forty.map((ip) => ({ ip, ready: true })), [{ name: 'http', port: 80 }]));
    api.add(headless('shop', 'pods'));
    api.add(endpointSlice('shop', 'pods', [{ ip: '10.244.9.1', ready: true }]));
    upstream = await startUpstream(external);
    corefile = join(dir, 'Corefile');
    writeFileSync(corefile, kubeadmCorefile(api.kubeconfigFile(dir), upstream.addr));
    rt = await startFromFile(corefile, { log: memoryLogger(), defaultPort: 53 });
    ref = await startFromFile(corefile, { log: memoryLogger(), defaultPort: 53, memoEntries: 0 });
    port = rt.listeners[0]!.udpPort;
    refPort = ref.listeners[0]!.udpPort;
  });

  afterAll(async () => {
    await rt?.stop().catch(() => undefined);
    await ref?.stop().catch(() => undefined);
    await upstream?.close();
    await api?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers a Service asked again from the memo, byte for byte as the chain does but for the ID', async () => {
    expect(rt.listeners[0]!.ctx.memo).not.toBeNull();
    const h0 = counts().hits;
    const { chain, replies } = await both('web.shop.svc.cluster.local.', Type.A, {}, 6);
    expect(addrs(decode(chain))).toEqual(['10.96.7.7']);
    replies.forEach((r, i) => expect(hex(r), `reply ${i + 1}`).toBe(hex(withId(chain, i + 1))));
    expect(counts().hits - h0).toBe(5); // the first was the chain's, then kept
  });

  it('answers search-path NXDOMAINs from the memo, as the chain does', async () => {
    const h0 = counts().hits;
    const names = [
      'web.shop.svc.cluster.local.shop.svc.cluster.local.', 'web.shop.svc.cluster.local.svc.cluster.local.',
      'web.shop.svc.cluster.local.cluster.local.', 'example.org.shop.svc.cluster.local.', 'nope.shop.svc.cluster.local.',
    ];
    for (const name of names) {
      for (const type of [Type.A, Type.AAAA]) {
        const { chain, replies } = await both(name, type);
        expect(decode(chain).rcode).toBe(Rcode.NXDOMAIN);
        // The first reply is this runtime's chain's (the count below says the other two were hits).
        replies.forEach((r, i) => expect(hex(r), `${name} ${type} reply ${i + 1}`).toBe(hex(withId(replies[0]!, i + 1))));
        // The runtime without a memo agrees, but for the SOA serial: each zone's time of its last change.
        expect(withoutSerial(decode(replies[0]!))).toEqual(withoutSerial(decode(chain)));
      }
    }
    expect(counts().hits - h0).toBe(names.length * 2 * 2);
  });

  it('gives each letter-case variant its own case back', async () => {
    const h0 = counts().hits;
    const variants = ['Api.Shop.SVC.cluster.local.', 'API.SHOP.SVC.CLUSTER.LOCAL.', 'aPi.shop.svc.cluster.LOCAL.'];
    const chain = new Map<string, Uint8Array>();
    for (const v of variants) chain.set(v, await udp(refPort, queryBytes(v, Type.A, { id: 7 })));
    for (let round = 0; round < 3; round++) {
      for (const v of variants) {
        const r = await udp(port, queryBytes(v, Type.A, { id: 7 }));
        expect(hex(r), `${v} round ${round}`).toBe(hex(chain.get(v)!));
        const m = decode(r);
        expect(m.question[0]!.name).toBe(v);
        expect(m.answer.map((a) => a.name)).toEqual([v]);
        expect(addrs(m)).toEqual(['10.96.7.8']);
      }
    }
    expect(counts().hits - h0).toBe(variants.length * 2);
  });

  it('keeps UDP and TCP apart, and answers TCP from the memo as the chain does', async () => {
    const name = 'api.shop.svc.cluster.local.';
    const refTcp = await tcpConnect(ref.listeners[0]!.tcpPort);
    refTcp.send(queryBytes(name, Type.A, { id: 40 }));
    const [chain] = await refTcp.read(1);
    refTcp.close();
    expect(chain).toBeDefined();
    // Kept for UDP first: a TCP query must not find that entry.
    for (let id = 1; id <= 2; id++) await udp(port, queryBytes(name, Type.A, { id }));
    const h0 = counts().hits;
    const c = await tcpConnect(rt.listeners[0]!.tcpPort);
    try {
      for (let id = 40; id < 45; id++) {
        c.send(queryBytes(name, Type.A, { id }));
        const [r] = await c.read(1);
        expect(hex(r!), `tcp ${id}`).toBe(hex(withId(chain!, id)));
      }
      // Pipelined: five at once, each answered with its own ID.
      for (let id = 50; id < 55; id++) c.send(queryBytes(name, Type.A, { id }));
      const rs = await c.read(5);
      expect(rs.map((r) => hex(r))).toEqual([50, 51, 52, 53, 54].map((id) => hex(withId(chain!, id))));
    } finally {
      c.close();
    }
    expect(counts().hits - h0).toBe(9); // the first TCP query found nothing: the chain's, then kept
  });

  it('keeps EDNS, the DO bit and the reply size apart, each answered as the chain does', async () => {
    const name = 'stats.shop.svc.cluster.local.';
    const h0 = counts().hits;
    const kinds: QueryOpts[] = [{}, { edns: { udpSize: 1232 } }, { edns: { udpSize: 1232, do: true } }, { edns: { udpSize: 600 } }];
    const seen = new Set<string>();
    for (const o of kinds) {
      const { chain, replies } = await both(name, Type.A, o);
      replies.forEach((r, i) => expect(hex(r), `${JSON.stringify(o)} reply ${i + 1}`).toBe(hex(withId(chain, i + 1))));
      expect(decode(chain).edns?.do ?? null).toBe(o.edns ? (o.edns.do ?? false) : null);
      seen.add(hex(chain));
    }
    expect(seen.size).toBe(3); // no EDNS, EDNS, EDNS + DO (600 and 1232 read the same)
    expect(counts().hits - h0).toBe(kinds.length * 2);
    // A client size above ours is clamped to ours (1232): the same key, the same reply.
    const big = await udp(port, queryBytes(name, Type.A, { id: 9, edns: { udpSize: 4096 } }));
    expect(counts().hits - h0).toBe(kinds.length * 2 + 1);
    expect(hex(big)).toBe(hex(withId(await udp(refPort, queryBytes(name, Type.A, { id: 1, edns: { udpSize: 4096 } })), 9)));
  });

  it('a truncated SRV reply (TC over UDP) is what the chain gives', async () => {
    // Its additional A records are loadbalance's to shuffle, and were cut: not kept (see the next
    // test), but every reply must still be the chain's, byte for byte.
    const name = '_http._tcp.big.shop.svc.cluster.local.';
    for (const o of [{}, { edns: { udpSize: 512 } }] as QueryOpts[]) {
      const { chain, replies } = await both(name, Type.SRV, o, 4);
      const m = decode(chain);
      expect(m.flags.tc).toBe(true);
      expect(m.answer.length).toBeGreaterThan(0);
      expect(m.answer.length).toBeLessThan(40);
      expect(chain.length).toBeLessThanOrEqual(512);
      replies.forEach((r, i) => expect(hex(r), `${JSON.stringify(o)} reply ${i + 1}`).toBe(hex(withId(chain, i + 1))));
    }
  });

  it('a cached answer too big for the client\'s size (TC over UDP) is kept and given back as the chain gives it', async () => {
    const name = 'txt.example.org.';
    const txt = Array.from({ length: 20 }, (_, i) => `${name} 300 IN TXT "record ${String(i).padStart(2, '0')} ${'x'.repeat(40)}"`);
    upstream.handle((q) => (q.name === name && q.type === Type.TXT ? { answer: txt } : { rcode: Rcode.NXDOMAIN }));
    try {
      for (const o of [{}, { edns: { udpSize: 512 } }, { edns: { udpSize: 700, do: true } }] as QueryOpts[]) {
        // Over UDP the upstream's reply is truncated too, and a truncated reply is not cached: the
        // client asks again over TCP (as resolvers do after TC), and that answer fills the cache.
        for (const p of [ref.listeners[0]!.tcpPort, rt.listeners[0]!.tcpPort]) {
          expect(decode((await tcpExchange(p, queryBytes(name, Type.TXT, o)))!).answer).toHaveLength(20);
        }
        const h0 = counts().hits;
        // 1: a cache hit, kept; 2-5: from the memo.
        const { chain, replies } = await both(name, Type.TXT, o, 5);
        const m = decode(chain);
        expect(m.flags.tc).toBe(true);
        expect(m.answer.length).toBeGreaterThan(0);
        expect(m.answer.length).toBeLessThan(20);
        expect(chain.length).toBeLessThanOrEqual(Math.max(512, o.edns?.udpSize ?? 512));
        replies.forEach((r, i) => expect(hex(r), `${JSON.stringify(o)} reply ${i + 1}`).toBe(hex(withId(chain, i + 1))));
        expect(counts().hits - h0).toBe(4);
      }
    } finally {
      upstream.handle(external);
    }
  });

  it('a truncated reply of shuffled addresses stays a valid prefix of the records, however often it is asked', async () => {
    // 40 A records do not fit in 512 bytes: the chain shuffles all 40 and sends those that fit, with TC.
    const name = 'big.shop.svc.cluster.local.';
    for (const o of [{}, { edns: { udpSize: 512 } }] as QueryOpts[]) {
      const chain = decode(await udp(refPort, queryBytes(name, Type.A, { ...o, id: 1 })));
      expect(chain.flags.tc).toBe(true);
      for (let id = 1; id <= 30; id++) {
        const bytes = await udp(port, queryBytes(name, Type.A, { ...o, id }));
        expect(bytes.length).toBeLessThanOrEqual(512);
        const m = decode(bytes);
        expect(m.id).toBe(id);
        expect(m.flags.tc).toBe(true);
        expect(m.answer).toHaveLength(chain.answer.length);
        for (const a of m.answer) {
          expect(a.type).toBe(Type.A);
          expect(a.name).toBe(name);
          expect(a.ttl).toBe(30);
        }
        const got = addrs(m);
        expect(new Set(got).size, `reply ${id}: duplicates in ${got.join(' ')}`).toBe(got.length);
        for (const ip of got) expect(forty).toContain(ip);
        expect(m.edns ? m.edns.udpSize : null).toBe(chain.edns ? chain.edns.udpSize : null);
      }
    }
  });

  it('a big shuffled answer over TCP comes from the memo, reshuffled, always all 40 records', async () => {
    const name = 'big.shop.svc.cluster.local.';
    const h0 = counts().hits;
    const c = await tcpConnect(rt.listeners[0]!.tcpPort);
    const orders = new Set<string>();
    try {
      for (let id = 1; id <= 20; id++) {
        c.send(queryBytes(name, Type.A, { id }));
        const [r] = await c.read(1);
        const m = decode(r!);
        expect(m.flags.tc).toBe(false);
        expect(sorted(addrs(m))).toEqual(sorted(forty));
        orders.add(addrs(m).join(' '));
      }
    } finally {
      c.close();
    }
    expect(counts().hits - h0).toBe(19);
    expect(orders.size).toBeGreaterThan(1);
  });

  it('loadbalance: a headless Service from the memo is reshuffled on each reuse, always the same records', async () => {
    const name = 'four.shop.svc.cluster.local.';
    const chain = decode(await udp(refPort, queryBytes(name, Type.A, { id: 1 })));
    const h0 = counts().hits;
    const orders = new Map<string, number>();
    for (let id = 1; id <= 200; id++) {
      const bytes = await udp(port, queryBytes(name, Type.A, { id }));
      const m = decode(bytes);
      expect(m.id).toBe(id);
      expect(sorted(addrs(m))).toEqual(four);
      // Apart from the order, the chain's reply.
      expect({ ...m, id: 1, answer: [...m.answer].sort((a, b) => String(a.data).localeCompare(String(b.data))) })
        .toEqual({ ...chain, answer: [...chain.answer].sort((a, b) => String(a.data).localeCompare(String(b.data))) });
      const k = addrs(m).join(' ');
      orders.set(k, (orders.get(k) ?? 0) + 1);
    }
    expect(counts().hits - h0).toBe(199);
    expect(orders.size).toBeGreaterThan(1);
    // 24 orders, 200 draws: a fair shuffle puts no order anywhere near half of them.
    expect(Math.max(...orders.values())).toBeLessThan(60);
  });

  it('cache + forward: the cached answer is reused from the memo, counted as cache hits, its TTL aged', async () => {
    const name = 'ext.example.org.';
    const metrics = async () => metric(await rt.metrics.text(), 'coredns_cache_hits_total', { type: 'success' });
    const cache0 = await metrics();
    const h0 = counts().hits;
    upstream.reset();
    const o: QueryOpts = { edns: { udpSize: 1000 } };
    const replies: Uint8Array[] = [];
    for (let id = 1; id <= 6; id++) replies.push(await udp(port, queryBytes(name, Type.A, { ...o, id })));
    expect(upstream.count({ name })).toBe(1);
    const first = decode(replies[0]!);
    expect(addrs(first)).toEqual(['192.0.2.1']);
    expect(first.answer[0]!.ttl).toBe(30);
    // 1: a cache miss (forwarded); 2: a cache hit, kept; 3-6: from the memo.
    expect(counts().hits - h0).toBe(4);
    expect(await metrics() - cache0).toBe(5);

    await new Promise((r) => setTimeout(r, 1100));
    // The memo's reply, the chain's (a size not asked before: a new key, so the chain answers from the
    // cache) and the memo's again: the chain's equals one of the two around it (a second may tick).
    const m1 = await udp(port, queryBytes(name, Type.A, { ...o, id: 21 }));
    const c = await udp(port, queryBytes(name, Type.A, { edns: { udpSize: 1100 }, id: 22 }));
    const m2 = await udp(port, queryBytes(name, Type.A, { ...o, id: 23 }));
    expect(counts().hits - h0).toBe(6);
    expect(await metrics() - cache0).toBe(8);
    expect(upstream.count({ name })).toBe(1);
    expect(decode(m1).answer[0]!.ttl).toBeLessThanOrEqual(29);
    expect([hex(withId(m1, 22)), hex(withId(m2, 22))]).toContain(hex(c));
  });

  it('coredns_dns_requests_total and _responses_total count memo answers as the chain’s, plugin="kubernetes"', async () => {
    const name = 'moving.shop.svc.cluster.local.';
    const names = ['coredns_dns_requests_total', 'coredns_dns_responses_total', 'coredns_dns_request_duration_seconds_count',
      'coredns_dns_response_size_bytes_count', 'coredns_dns_request_size_bytes_count'];
    for (const proto of ['udp', 'tcp'] as const) {
      const ask = async (id: number) => {
        const q = queryBytes(name, Type.AAAA, { id });
        if (proto === 'udp') return udp(port, q);
        const c = await tcpConnect(rt.listeners[0]!.tcpPort);
        c.send(q);
        const [r] = await c.read(1);
        c.close();
        return r!;
      };
      const t0 = samples(await rt.metrics.text(), names);
      await ask(1); // the chain's
      const t1 = samples(await rt.metrics.text(), names);
      const h0 = counts().hits;
      for (let id = 2; id <= 8; id++) await ask(id);
      expect(counts().hits - h0).toBe(7);
      const t2 = samples(await rt.metrics.text(), names);
      const byChain = moved(t0, t1);
      const byMemo = moved(t1, t2);
      expect([...byChain.values()]).toEqual([...byChain.keys()].map(() => 1));
      expect([...byMemo.keys()].sort()).toEqual([...byChain.keys()].sort());
      expect([...byMemo.values()]).toEqual([...byMemo.keys()].map(() => 7));
      const resp = [...byMemo.keys()].filter((k) => k.startsWith('coredns_dns_responses_total{'));
      expect(resp).toHaveLength(1);
      expect(resp[0]).toContain('plugin="kubernetes"');
      expect(resp[0]).toContain('rcode="NOERROR"');
      const req = [...byMemo.keys()].filter((k) => k.startsWith('coredns_dns_requests_total{'));
      expect(req).toHaveLength(1);
      expect(req[0]).toContain(`proto="${proto}"`);
      expect(req[0]).toContain('type="AAAA"');
    }
  });

  it('a changed, deleted or created Service is answered anew by the very next query', async () => {
    const inst = rt.instance!;
    const stale = async () => metric(await rt.metrics.text(), 'clusterdns_reply_memo_lookups_total', { result: 'stale' });
    /** The chain's answer (no memo on this path), once the watch event has reached the zone. */
    const applied = (name: string, type: number, ok: (m: Msg) => boolean) =>
      until(async () => { const m = await inst.query(0, name, type); return ok(m) ? m : undefined; }, `${name} in the zone`);
    /** Ask until it is kept and reused; then change the API with `change`; then the next query must see it. */
    const check = async (name: string, type: number, before: (m: Msg) => void, change: () => void, after: (m: Msg) => void) => {
      for (let id = 1; id <= 3; id++) before(decode(await udp(port, queryBytes(name, type, { id }))));
      const h0 = counts().hits;
      const s0 = await stale();
      const sc0 = counts().stale;
      before(decode(await udp(port, queryBytes(name, type, { id: 4 }))));
      expect(counts().hits - h0).toBe(1);
      change();
      await applied(name, type, (m) => { try { after(m); return true; } catch { return false; } });
      after(decode(await udp(port, queryBytes(name, type, { id: 5 }))));
      expect(counts().stale - sc0).toBe(1);
      expect(await stale() - s0).toBe(1);
      const h1 = counts().hits;
      for (let id = 6; id <= 15; id++) after(decode(await udp(port, queryBytes(name, type, { id }))));
      expect(counts().hits - h1).toBe(10); // the new reply was kept by the query that found the old one stale
    };

    await check('moving.shop.svc.cluster.local.', Type.A,
      (m) => expect(addrs(m)).toEqual(['10.96.50.1']),
      () => api.update(service('shop', 'moving', { clusterIP: '10.96.50.2', ports: [{ name: 'http', port: 80 }] })),
      (m) => expect(addrs(m)).toEqual(['10.96.50.2']));
    await check('gone.shop.svc.cluster.local.', Type.A,
      (m) => expect(addrs(m)).toEqual(['10.96.51.1']),
      () => api.remove('Service', 'shop', 'gone'),
      (m) => expect(m.rcode).toBe(Rcode.NXDOMAIN));
    await check('later.shop.svc.cluster.local.', Type.A,
      (m) => expect(m.rcode).toBe(Rcode.NXDOMAIN),
      () => api.add(service('shop', 'later', { clusterIP: '10.96.52.1' })),
      (m) => expect(addrs(m)).toEqual(['10.96.52.1']));
    await check('pods.shop.svc.cluster.local.', Type.A,
      (m) => expect(addrs(m)).toEqual(['10.244.9.1']),
      () => api.update(endpointSlice('shop', 'pods', [{ ip: '10.244.9.2', ready: true }])),
      (m) => expect(addrs(m)).toEqual(['10.244.9.2']));
    // A namespace that did not exist: NXDOMAIN for everything in it, until it and a Service appear.
    await check('db.data.svc.cluster.local.', Type.A,
      (m) => expect(m.rcode).toBe(Rcode.NXDOMAIN),
      () => { api.add(namespace('data')); api.add(service('data', 'db', { clusterIP: '10.96.53.1' })); },
      (m) => expect(addrs(m)).toEqual(['10.96.53.1']));
    // The chain without the memo agrees.
    expect(addrs(decode(await udp(refPort, queryBytes('moving.shop.svc.cluster.local.', Type.A))))).toEqual(['10.96.50.2']);
  });

  it('-memo 0: no memo, and the answers are right', async () => {
    expect(ref.listeners[0]!.ctx.memo).toBeNull();
    for (let id = 1; id <= 3; id++) {
      expect(addrs(decode(await udp(refPort, queryBytes('web.shop.svc.cluster.local.', Type.A, { id }))))).toEqual(['10.96.7.7']);
    }
    const text = await ref.metrics.text();
    expect(metric(text, 'clusterdns_reply_memo_lookups_total')).toBe(0);
    expect(metric(text, 'clusterdns_reply_memo_inserts_total')).toBe(0);
  });

  it('a block with log has no memo: every query is logged', async () => {
    const log = memoryLogger();
    // The cluster zone logs; the rest (cache + forward) may use the memo on the same listener.
    const text = `cluster.local:0 {
    bind 127.0.0.1
    log
    kubernetes cluster.local {
       kubeconfig ${join(dir, 'kubeconfig')}
    }
}
.:0 {
    bind 127.0.0.1
    cache 30
    forward . ${upstream.addr}
}
`;
    const lrt = await startFromText(text, { log, defaultPort: 53 });
    try {
      expect(lrt.listeners).toHaveLength(1);
      const l = lrt.listeners[0]!;
      const memo = l.ctx.memo!;
      expect(memo).not.toBeNull();
      const logged = () => log.lines.filter((x) => x.includes('"A IN web.shop.svc.cluster.local.')).length;
      for (let id = 1; id <= 5; id++) {
        expect(addrs(decode(await udp(l.udpPort, queryBytes('web.shop.svc.cluster.local.', Type.A, { id }))))).toEqual(['10.96.7.7']);
        expect(logged()).toBe(id);
      }
      expect(memo.counts.hits).toBe(0);
      expect(memo.counts.inserts).toBe(0);
      // The other block's replies are kept and reused (miss, cache hit kept, then two from the memo).
      for (let id = 1; id <= 4; id++) {
        expect(addrs(decode(await udp(l.udpPort, queryBytes('ext.example.org.', Type.A, { id }))))).toEqual(['192.0.2.1']);
      }
      expect(memo.counts.hits).toBe(2);
      expect(logged()).toBe(5);
    } finally {
      await lrt.stop();
    }
    // With log in the only block there is no memo at all.
    const only = await startFromText(`.:0 {\n    bind 127.0.0.1\n    log\n    kubernetes cluster.local {\n       kubeconfig ${join(dir, 'kubeconfig')}\n    }\n}\n`,
      { log: memoryLogger(), defaultPort: 53 });
    try {
      expect(only.listeners[0]!.ctx.memo).toBeNull();
    } finally {
      await only.stop();
    }
  });

  it('the CLI passes -memo 0 to the runtime (and without it the memo is on)', async () => {
    const events: Array<'SIGTERM' | 'SIGINT' | 'SIGUSR1'> = ['SIGTERM', 'SIGINT', 'SIGUSR1'];
    const before = new Map(events.map((e) => [e, new Set(process.listeners(e))]));
    const rejections = new Set(process.listeners('unhandledRejection'));
    const run = async (args: string[]) => {
      const r = await main(['-conf', corefile, '-quiet', ...args], memoryLogger());
      expect(r, 'main() started a runtime').toBeDefined();
      try {
        const l = r!.listeners[0]!;
        for (let id = 1; id <= 3; id++) {
          expect(addrs(decode(await udp(l.udpPort, queryBytes('web.shop.svc.cluster.local.', Type.A, { id }))))).toEqual(['10.96.7.7']);
        }
        return { memo: l.ctx.memo, entries: r!.opts.memoEntries };
      } finally {
        await r!.stop();
        // main() hooks signals for the process it runs; this test process keeps its own.
        for (const e of events) for (const f of process.listeners(e)) if (!before.get(e)!.has(f)) process.off(e, f);
        for (const f of process.listeners('unhandledRejection')) if (!rejections.has(f)) process.off('unhandledRejection', f);
      }
    };
    const off = await run(['-memo', '0']);
    expect(off.entries).toBe(0);
    expect(off.memo).toBeNull();
    const on = await run([]);
    expect(on.memo).not.toBeNull();
    expect(on.memo!.counts.hits).toBeGreaterThanOrEqual(2);
  });
});

describe('reply memo: with workers', () => {
  it('memo hits happen in the workers, and a zone change in main invalidates them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clusterdns-memo-workers-'));
    const api = await KubeApiServer.start();
    api.add(namespace('shop'));
    api.add(service('shop', 'web', { clusterIP: '10.96.7.7' }));
    const log = memoryLogger();
    const pool = new WorkerPool({ count: 2, log, defaultPort: 53, drainMs: 200 });
    const rt = new Runtime({ log, defaultPort: 53, role: 'main', dataPlane: pool, newLink: pool.newLink });
    rt.metrics.addRemote(() => pool.collect());
    const kubeconfig = api.kubeconfigFile(dir);
    let p = 0;
    try {
      await retryOnAddrInUse(async () => {
        p = pickPort();
        await rt.start(rt.plan(parseCorefile(`.:${p} {
    bind 127.0.0.1
    prometheus 127.0.0.1:0
    kubernetes cluster.local {
       kubeconfig ${kubeconfig}
    }
    loadbalance
}
`, { file: 'Corefile' })));
      });
      expect(rt.listeners).toEqual([]); // main answers no DNS: every hit below is a worker's
      const name = 'web.shop.svc.cluster.local.';
      const lookups = async (result: string) => metric(await rt.metrics.text(), 'clusterdns_reply_memo_lookups_total', { result });
      for (let id = 1; id <= 20; id++) expect(addrs(decode(await udp(p, queryBytes(name, Type.A, { id }))))).toEqual(['10.96.7.7']);
      // Each client socket is new, so the kernel spreads them: at most one chain answer per worker.
      expect(await lookups('hit')).toBeGreaterThanOrEqual(18);
      const stale0 = await lookups('stale');
      api.update(service('shop', 'web', { clusterIP: '10.96.7.70' }));
      await until(async () => {
        const m = await rt.instance!.query(0, name, Type.A);
        return addrs(m)[0] === '10.96.7.70' ? m : undefined;
      }, 'the change in main\'s zone');
      const hits0 = await lookups('hit');
      for (let id = 1; id <= 20; id++) expect(addrs(decode(await udp(p, queryBytes(name, Type.A, { id }))))).toEqual(['10.96.7.70']);
      expect(await lookups('stale') - stale0).toBeGreaterThanOrEqual(1);
      expect(await lookups('hit') - hits0).toBeGreaterThanOrEqual(18);
    } finally {
      await rt.stop();
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
