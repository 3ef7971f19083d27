// The Corefile of deploy/kubernetes/configmap.yaml (kubeadm's default), served for real: addresses are
// moved to loopback and free ports, `forward` points at a test upstream, and `kubernetes` at the test
// API server through an injected `kubeconfig` line. Everything else is the ConfigMap's text. Then the
// cluster answers, the rest is forwarded and cached, and a stop goes through the lameduck the rollout
// arithmetic in deploy/README.md counts on: DNS still answers while /ready already says 503.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadAll } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { decode } from '../../src/dns/codec.ts';
import { Rcode, Type, type Msg } from '../../src/dns/types.ts';
import { memoryLogger } from '../../src/log.ts';
import { Runtime } from '../../src/server/runtime.ts';
import { udpExchange } from '../client.ts';
import { queryBytes } from '../helpers.ts';
import { endpointSlice, namespace, service } from '../kubeapi/objects.ts';
import { KubeApiServer } from '../kubeapi/server.ts';
import { startUpstream, type Upstream } from '../upstream.ts';
import { pickPort, retryOnAddrInUse } from '../ports.ts';

const root = resolve(import.meta.dirname, '../..');

function configMapCorefile(): string {
  const [cm] = loadAll(readFileSync(join(root, 'deploy/kubernetes/configmap.yaml'), 'utf8')) as Array<{ data: { Corefile: string } }>;
  return cm!.data.Corefile;
}

/** Replace `from` (which must occur exactly once) by `to`: a changed ConfigMap fails here, loudly. */
function once(text: string, from: RegExp, to: string): string {
  const hits = text.match(new RegExp(from.source, `${from.flags.replace('g', '')}g`)) ?? [];
  expect(hits, `${String(from)} occurs once in the ConfigMap Corefile`).toHaveLength(1);
  return text.replace(from, to);
}

function nodeLocalCorefile(): string {
  const [cm] = loadAll(readFileSync(join(root, 'deploy/node-local/configmap.yaml'), 'utf8')) as Array<{ data: { Corefile: string } }>;
  return cm!.data.Corefile;
}

/** Sum of a counter's samples whose labels contain every `want` pair. */
function counter(text: string, name: string, want: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(want).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function query(port: number, name: string, type: number): Promise<Msg> {
  const reply = await udpExchange(port, queryBytes(name, type), { timeoutMs: 3000 });
  expect(reply, `${name} ${type}: no reply`).toBeDefined();
  return decode(reply!);
}

async function waitReady(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await fetch(url).catch(() => undefined);
    if (r?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${url} not ready: ${r?.status} ${await r?.text()}`);
    await new Promise((t) => setTimeout(t, 50));
  }
}

describe('the kubeadm Corefile from the ConfigMap, served against a test API server', () => {
  let api: KubeApiServer;
  let upstream: Upstream;
  let rt: Runtime;
  let dir: string;
  let dnsPort: number;
  let health: string;
  let ready: string;
  let metrics: string;
  const log = memoryLogger();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'clusterdns-kubeadm-'));
    api = await KubeApiServer.start();
    api.add(namespace('shop'));
    api.add(service('shop', 'web', { clusterIP: '10.96.7.7', ports: [{ name: 'http', port: 80 }] }));
    api.add(endpointSlice('shop', 'web', [{ ip: '10.244.1.5', ready: true }], [{ name: 'http', port: 8080 }]));
    upstream = await startUpstream();
    upstream.handle((q) => (q.name === 'example.org.' && q.type === Type.A
      ? { answer: ['example.org. 300 IN A 192.0.2.1'] }
      : { rcode: Rcode.NXDOMAIN }));

    // Ports from this test worker's slice (test/ports.ts), and a new set if one is taken anyway.
    await retryOnAddrInUse(async () => {
      dnsPort = pickPort();
      const [hp, rp, mp] = [pickPort(), pickPort(), pickPort()];
      health = `http://127.0.0.1:${hp}/health`;
      ready = `http://127.0.0.1:${rp}/ready`;
      metrics = `http://127.0.0.1:${mp}/metrics`;

      let text = configMapCorefile();
      text = once(text, /^\.:53 \{$/m, `.:${dnsPort} {\n    bind 127.0.0.1`);
      text = once(text, /^(\s*)health \{$/m, `$1health 127.0.0.1:${hp} {`);
      text = once(text, /lameduck 5s/, 'lameduck 1s'); // same mechanism, shorter wait
      text = once(text, /^(\s*)ready$/m, `$1ready 127.0.0.1:${rp}`);
      text = once(text, /^(\s*)prometheus :9153$/m, `$1prometheus 127.0.0.1:${mp}`);
      // A resolv.conf cannot name a port (its nameservers are used on 53), so the upstream's address
      // replaces the file name; the directive's block (max_concurrent 1000) stays as it is.
      text = once(text, /forward \. \/etc\/resolv\.conf \{/, `forward . ${upstream.addr} {`);
      text = once(text, /^(\s*)kubernetes cluster\.local in-addr\.arpa ip6\.arpa \{$/m,
        `$1kubernetes cluster.local in-addr.arpa ip6.arpa {\n$1   kubeconfig ${api.kubeconfigFile(dir)}`);

      rt = new Runtime({ log, defaultPort: 53 });
      try {
        await rt.start(rt.plan(parseCorefile(text, { file: 'ConfigMap/clusterdns' })));
      } catch (e) {
        await rt.stop().catch(() => undefined);
        throw e;
      }
    });
    await waitReady(ready);
  });

  afterAll(async () => {
    await rt?.stop().catch(() => undefined);
    await upstream?.close();
    await api?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('watches exactly services, endpointslices and namespaces (pods insecure needs no pods)', () => {
    const paths = new Set(api.requests.map((r) => r.path.replace(/\/namespaces\/[^/]+(?=\/)/, '')));
    expect(paths.has('/api/v1/services')).toBe(true);
    expect(paths.has('/apis/discovery.k8s.io/v1/endpointslices')).toBe(true);
    expect(paths.has('/api/v1/namespaces')).toBe(true);
    expect([...paths].filter((p) => p.includes('pods'))).toEqual([]);
  });

  it('answers a Service with its clusterIP and the ConfigMap\'s ttl 30', async () => {
    const m = await query(dnsPort, 'web.shop.svc.cluster.local.', Type.A);
    expect(m.rcode).toBe(Rcode.NOERROR);
    expect(m.answer).toEqual([expect.objectContaining({ type: Type.A, data: '10.96.7.7', ttl: 30 })]);
  });

  it('answers the reverse of a clusterIP, and forwards other reverse names (fallthrough)', async () => {
    const ptr = await query(dnsPort, '7.7.96.10.in-addr.arpa.', Type.PTR);
    expect(ptr.answer.map((r) => r.data)).toEqual(['web.shop.svc.cluster.local.']);
    await query(dnsPort, '55.2.0.192.in-addr.arpa.', Type.PTR);
    expect(upstream.count({ name: '55.2.0.192.in-addr.arpa.', type: Type.PTR })).toBe(1);
  });

  it('answers pod names from the query (pods insecure)', async () => {
    const m = await query(dnsPort, '10-244-1-5.shop.pod.cluster.local.', Type.A);
    expect(m.answer.map((r) => r.data)).toEqual(['10.244.1.5']);
  });

  it('forwards other names upstream and caches them (cache 30)', async () => {
    upstream.reset();
    const a = await query(dnsPort, 'example.org.', Type.A);
    expect(a.answer.map((r) => r.data)).toEqual(['192.0.2.1']);
    const b = await query(dnsPort, 'example.org.', Type.A);
    expect(b.answer.map((r) => r.data)).toEqual(['192.0.2.1']);
    expect(upstream.count({ name: 'example.org.' })).toBe(1);
    expect(b.answer[0]!.ttl).toBeLessThanOrEqual(30);
  });

  it('serves /health and CoreDNS-named metrics', async () => {
    expect((await fetch(health)).status).toBe(200);
    const text = await (await fetch(metrics)).text();
    for (const name of ['coredns_dns_requests_total', 'coredns_dns_responses_total', 'coredns_cache_hits_total', 'coredns_kubernetes_objects']) {
      expect(text, name).toContain(name);
    }
  });

  it('the node-local Corefile in front of it: cluster names over TCP to the cluster DNS, cached; the rest upstream', async () => {
    // A new set of ports if one is taken anyway (tests run in parallel on this machine).
    const { nl, nlPort, rp } = await retryOnAddrInUse(async () => {
      const nlPort = pickPort();
      const [hp, rp, mp] = [pickPort(), pickPort(), pickPort()];
      let text = nodeLocalCorefile();
      text = once(text, /^cluster\.local:53 in-addr\.arpa:53 ip6\.arpa:53 \{$/m,
        `cluster.local:${nlPort} in-addr.arpa:${nlPort} ip6.arpa:${nlPort} {\n    bind 127.0.0.1`);
      text = once(text, /^\.:53 \{$/m, `.:${nlPort} {\n    bind 127.0.0.1`);
      text = once(text, /^(\s*)health \{$/m, `$1health 127.0.0.1:${hp} {`);
      text = once(text, /lameduck 5s/, 'lameduck 100ms');
      text = once(text, /^(\s*)ready$/m, `$1ready 127.0.0.1:${rp}`);
      text = text.replace(/^(\s*)prometheus :9153$/gm, `$1prometheus 127.0.0.1:${mp}`);
      text = once(text, /forward \. \/etc\/resolv\.conf$/m, `forward . ${upstream.addr}`);
      // {$KUBE_DNS_SERVICE_HOST} stays: the kubelet's Service-link variable, here the cluster DNS above.
      const nl = new Runtime({ log: memoryLogger(), defaultPort: 53 });
      try {
        await nl.start(nl.plan(parseCorefile(text, { file: 'ConfigMap/clusterdns-node-local', env: { KUBE_DNS_SERVICE_HOST: `127.0.0.1:${dnsPort}` } })));
      } catch (e) {
        await nl.stop().catch(() => undefined);
        throw e;
      }
      return { nl, nlPort, rp };
    });
    try {
      await waitReady(`http://127.0.0.1:${rp}/ready`);
      const before = counter(await (await fetch(metrics)).text(), 'coredns_dns_requests_total', { proto: 'tcp' });
      const a = await query(nlPort, 'web.shop.svc.cluster.local.', Type.A);
      expect(a.answer.map((r) => r.data)).toEqual(['10.96.7.7']);
      const b = await query(nlPort, 'web.shop.svc.cluster.local.', Type.A);
      expect(b.answer.map((r) => r.data)).toEqual(['10.96.7.7']);
      expect(b.answer[0]!.ttl).toBeLessThanOrEqual(30);
      // One query reached the cluster DNS, over TCP (force_tcp); the second came from the node cache.
      expect(counter(await (await fetch(metrics)).text(), 'coredns_dns_requests_total', { proto: 'tcp' }) - before).toBe(1);
      upstream.reset();
      const ext = await query(nlPort, 'example.org.', Type.A);
      expect(ext.answer.map((r) => r.data)).toEqual(['192.0.2.1']);
      expect(upstream.count({ name: 'example.org.' })).toBe(1);
    } finally {
      await nl.stop();
    }
  });

  it('on stop: lameduck keeps DNS answering while /ready reports 503, then closes', async () => {
    const stopping = rt.stop();
    await new Promise((t) => setTimeout(t, 100));
    const r = await fetch(ready);
    expect(r.status).toBe(503);
    const m = await query(dnsPort, 'web.shop.svc.cluster.local.', Type.A);
    expect(m.answer.map((x) => x.data)).toEqual(['10.96.7.7']);
    await stopping;
    expect(log.lines.join('\n')).toContain('Going into lameduck mode for 1s');
    expect(await udpExchange(dnsPort, queryBytes('web.shop.svc.cluster.local.', Type.A), { timeoutMs: 300 })).toBeUndefined();
  });
});
