// Parsing (CoreDNS syntax, defaults, exact error texts) and setup wiring with fake sources.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { Rcode, Type } from '../../src/dns/types.ts';
import { fakeEnv, makeRequest, serve, sortAndCheck } from '../../test/helpers.ts';
import type { KubernetesConfig } from './config.ts';
import { plugin, setupKubernetes, type SourceStarters } from './index.ts';
import type { SourceHandle, ZoneSink } from './objects.ts';
import type { ApiSourceConfig } from './source-api.ts';

function controllers(text: string): Controller[] {
  const cf = parseCorefile(text, { file: 'Corefile', env: {} });
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === 'kubernetes').map((d) => new Controller(d, b)));
}
function parse(text: string): KubernetesConfig {
  return plugin.parse(controllers(text)[0]!);
}
const k = (body: string, keys = 'cluster.local') => `${keys} {\n  kubernetes ${body}\n}\n`;

describe('parse', () => {
  it('defaults to the server block zones and CoreDNS defaults', () => {
    expect(parse(k(''))).toEqual({
      zones: ['cluster.local.'], primaryZone: 'cluster.local.', namespaces: [], pods: 'disabled', endpointPodNames: false,
      ttl: 5, noEndpoints: false, fallthrough: null, ignoreEmptyService: false, startupTimeoutMs: 5000, manifests: [], warnings: [],
    });
    expect(parse(k('', 'cluster.local 10.0.0.0/8')).zones).toEqual(['cluster.local.', '10.in-addr.arpa.']);
  });

  it('takes zones from its arguments, CIDRs as reverse zones', () => {
    const c = parse(k('Cluster.Local in-addr.arpa ip6.arpa 10.0.0.0/23', '.'));
    expect(c.zones).toEqual(['cluster.local.', 'in-addr.arpa.', 'ip6.arpa.', '0.0.10.in-addr.arpa.', '1.0.10.in-addr.arpa.']);
    expect(c.primaryZone).toBe('cluster.local.');
    expect(parse(k('in-addr.arpa cluster.local')).primaryZone).toBe('cluster.local.');
  });

  it('reads every option', () => {
    const c = parse(k(`cluster.local in-addr.arpa {
    endpoint https://k8s:6443
    tls cert.pem key.pem ca.pem
    kubeconfig /etc/kube.conf ctx
    labels environment in (staging, qa),application=nginx
    namespace_labels istio-injection=enabled
    pods verified
    endpoint_pod_names
    ttl 30
    noendpoints
    fallthrough in-addr.arpa
    ignore empty_service
    startup_timeout 1m30s
  }`));
    expect(c).toMatchObject({
      endpoint: 'https://k8s:6443', tls: { cert: 'cert.pem', key: 'key.pem', ca: 'ca.pem' },
      kubeconfig: { file: '/etc/kube.conf', context: 'ctx' }, labels: 'environment in (staging, qa),application=nginx',
      namespaceLabels: 'istio-injection=enabled', pods: 'verified', endpointPodNames: true, ttl: 30, noEndpoints: true,
      fallthrough: ['in-addr.arpa.'], ignoreEmptyService: true, startupTimeoutMs: 90_000,
    });
    expect(parse(k('{\n namespaces a b a\n kubeconfig f\n fallthrough\n ttl 0\n}'))).toMatchObject({
      namespaces: ['a', 'b'], kubeconfig: { file: 'f' }, fallthrough: ['.'], ttl: 0,
    });
    expect(parse(k('{\n manifests /m/a.yaml /m/dir\n pods insecure\n ttl 3600\n startup_timeout 0\n}'))).toMatchObject({
      manifests: ['/m/a.yaml', '/m/dir'], pods: 'insecure', ttl: 3600, startupTimeoutMs: 0,
    });
  });

  it('keeps only the first of several endpoints, with a warning', () => {
    const c = parse(k('{\n endpoint http://a:8080 http://b:8080\n}'));
    expect(c.endpoint).toBe('http://a:8080');
    expect(c.warnings).toEqual(["Multiple endpoints have been deprecated, only the first specified endpoint 'http://a:8080' is used"]);
  });

  const bad: Array<[string, string]> = [
    [k('in-addr.arpa 10.0.0.0/8'), 'Corefile:2 - Error during parsing: non-reverse zone name must be used'],
    [k('', '10.0.0.0/8'), 'Corefile:2 - Error during parsing: non-reverse zone name must be used'],
    [k('{\n pods\n}'), "Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'pods'"],
    [k('{\n pods bogus\n}'), 'Corefile:3 - Error during parsing: wrong value for pods: bogus,  must be one of: disabled, verified, insecure'],
    [k('{\n endpoint_pod_names x\n}'), "Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'x'"],
    [k('{\n namespaces\n}'), "Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'namespaces'"],
    [k('{\n endpoint\n}'), "Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'endpoint'"],
    [k('{\n tls a b\n}'), "Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'b'"],
    [k('{\n kubeconfig a b c\n}'), "Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'c'"],
    [k('{\n labels\n}'), "Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'labels'"],
    [k('{\n ttl\n}'), "Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'ttl'"],
    [k('{\n ttl abc\n}'), 'Corefile:3 - Error during parsing: strconv.Atoi: parsing "abc": invalid syntax'],
    [k('{\n ttl -1\n}'), 'Corefile:3 - Error during parsing: ttl must be in range [0, 3600]: -1'],
    [k('{\n ttl 3601\n}'), 'Corefile:3 - Error during parsing: ttl must be in range [0, 3600]: 3601'],
    [k('{\n noendpoints x\n}'), "Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'x'"],
    [k('{\n ignore emptyservice\n}'), "Corefile:3 - Error during parsing: unable to parse ignore value: 'emptyservice'"],
    [k('{\n ignore\n}'), "Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'ignore'"],
    [k('{\n startup_timeout soon\n}'), 'Corefile:3 - Error during parsing: time: invalid duration "soon"'],
    [k('{\n startup_timeout\n}'), "Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'startup_timeout'"],
    [k('{\n manifests\n}'), "Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'manifests'"],
    [k('{\n resyncperiod 5m\n}'), "Corefile:3 - Error during parsing: unknown property 'resyncperiod'"],
    [k('{\n upstream\n}'), "Corefile:3 - Error during parsing: unknown property 'upstream'"],
    [k('{\n namespaces a\n namespace_labels x=y\n}'), 'Corefile:2 - Error during parsing: namespaces and namespace_labels cannot both be set'],
    [k('{\n manifests /m\n endpoint https://k8s\n}'), 'Corefile:2 - Error during parsing: manifests cannot be combined with endpoint, tls or kubeconfig'],
    [k('{\n fallthrough 10.0.0.0/33\n}'), 'Corefile:3 - Error during parsing: invalid CIDR 10.0.0.0/33'],
  ];
  it.each(bad)('rejects %j', (text, msg) => {
    expect(() => parse(text)).toThrow(`plugin/kubernetes: ${msg}`);
  });

  it('rejects bad label selectors with the selector parser\'s reason', () => {
    expect(() => parse(k('{\n labels a in (b\n}'))).toThrow(/^plugin\/kubernetes: Corefile:3 - Error during parsing: unable to parse label selector value: 'a in \(b': /);
    expect(() => parse(k('{\n namespace_labels =x\n}'))).toThrow(/unable to parse namespace_label selector value: '=x': /);
  });

  it('parses every Corefile example of the README', () => {
    const md = readFileSync(new URL('./README.md', import.meta.url), 'utf8');
    const blocks = [...md.matchAll(/```corefile\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThan(3);
    for (const text of blocks) for (const c of controllers(text)) expect(() => plugin.parse(c)).not.toThrow();
  });
});

// ------------------------------------------------------------------------------------- setup

class FakeSource implements SourceHandle {
  readonly synced: Promise<void>;
  stopped = false;
  private done = false;
  private resolveSynced!: () => void;
  constructor() { this.synced = new Promise((r) => { this.resolveSynced = r; }); }
  isSynced(): boolean { return this.done; }
  lastContact(): number { return 0; }
  sync(): void { this.done = true; this.resolveSynced(); }
  async stop(): Promise<void> { this.stopped = true; }
}

function starters() {
  const calls: { api?: ApiSourceConfig; manifests?: { paths: string[]; opts: unknown }; sink?: ZoneSink } = {};
  const src = new FakeSource();
  const s: SourceStarters = {
    api(cfg, sink) { calls.api = cfg; calls.sink = sink; return src; },
    manifests(paths, sink, _env, opts) { calls.manifests = { paths, opts }; calls.sink = sink; return src; },
  };
  return { s, calls, src };
}

describe('setup', () => {
  it('starts the API source at startup with the configured connection, selectors and pod watch', async () => {
    const cfg = parse(k('{\n endpoint https://k8s:6443\n tls c k ca\n labels app=x\n namespace_labels team=y\n pods verified\n}'));
    const { env, startup } = fakeEnv();
    const { s, calls, src } = starters();
    setupKubernetes(cfg, env, { starters: s, localIPs: ['10.1.0.53'] });
    expect(calls.api).toBeUndefined();
    src.sync();
    for (const f of startup) await f();
    expect(calls.api).toEqual({
      endpoint: 'https://k8s:6443', tls: { cert: 'c', key: 'k', ca: 'ca' }, labels: 'app=x', namespaceLabels: 'team=y', watchPods: true,
    });
    const cfg2 = parse(k('{\n kubeconfig /kc ctx\n pods insecure\n}'));
    const t = starters();
    const e2 = fakeEnv();
    setupKubernetes(cfg2, e2.env, { starters: t.s });
    t.src.sync();
    for (const f of e2.startup) await f();
    expect(t.calls.api).toEqual({ kubeconfig: { file: '/kc', context: 'ctx' }, watchPods: false });
  });

  it('reads manifests instead of the API with `manifests`', async () => {
    const cfg = parse(k('{\n manifests /m/a.yaml /m/b\n labels app=x\n}'));
    const { env, startup } = fakeEnv();
    const { s, calls, src } = starters();
    setupKubernetes(cfg, env, { starters: s });
    src.sync();
    for (const f of startup) await f();
    expect(calls.api).toBeUndefined();
    expect(calls.manifests).toEqual({ paths: ['/m/a.yaml', '/m/b'], opts: { watch: true, labels: 'app=x' } });
    // Without Namespace objects in the files, a namespace exists while it holds a Service.
    calls.sink!.upsertService({ namespace: 'apps', name: 'web', type: 'ClusterIP', clusterIPs: ['10.0.0.5'], externalName: '', ports: [], publishNotReadyAddresses: false });
  });

  it('is not ready, and answers SERVFAIL for missing names, until the first sync; serves after startup_timeout', async () => {
    const cfg = parse(k('{\n startup_timeout 50ms\n}'));
    const { env, startup, ready, log, finalShutdown } = fakeEnv();
    const { s, calls, src } = starters();
    const h = setupKubernetes(cfg, env, { starters: s, localIPs: ['10.1.0.53'] });
    expect(ready.get('kubernetes')!()).toBe(false);
    const t0 = Date.now();
    for (const f of startup) await f();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    expect(log.lines).toContain('[WARNING] starting server with unsynced Kubernetes API');
    sortAndCheck(await serve(h, makeRequest('web.apps.svc.cluster.local.', Type.A)), { rcode: Rcode.SERVFAIL });
    sortAndCheck(await serve(h, makeRequest('example.org.', Type.A)), { rcode: Rcode.REFUSED });

    const sink = calls.sink!;
    sink.upsertNamespace({ name: 'apps', labels: {} });
    sink.upsertService({ namespace: 'apps', name: 'web', type: 'ClusterIP', clusterIPs: ['10.0.0.5'], externalName: '', ports: [], publishNotReadyAddresses: false, changedAt: Date.now() - 20 });
    sortAndCheck(await serve(h, makeRequest('web.apps.svc.cluster.local.', Type.A)), { rcode: Rcode.NOERROR, answer: ['web.apps.svc.cluster.local. 5 IN A 10.0.0.5'] });
    sortAndCheck(await serve(h, makeRequest('nope.apps.svc.cluster.local.', Type.A)), { rcode: Rcode.SERVFAIL });
    src.sync();
    expect(ready.get('kubernetes')!()).toBe(true);
    sortAndCheck(await serve(h, makeRequest('nope.apps.svc.cluster.local.', Type.A)), { rcode: Rcode.NXDOMAIN });
    // Replies are prebuilt for the server to copy.
    const m = await serve(h, makeRequest('web.apps.svc.cluster.local.', Type.A));
    expect(m.wire).toBeDefined();

    const text = await env.metrics.text();
    expect(text).toMatch(/coredns_kubernetes_dns_programming_duration_seconds_count\{service_kind="cluster_ip"\} 1/);
    expect(text).toMatch(/coredns_kubernetes_objects\{kind="Service"\} 1/);
    expect(text).toMatch(/coredns_kubernetes_objects\{kind="Namespace"\} 1/);

    for (const f of finalShutdown) await f();
    expect(src.stopped).toBe(true);
    expect(await env.metrics.text()).toMatch(/coredns_kubernetes_objects\{kind="Service"\} 0/);
  });

  it('does not wait once synced', async () => {
    const cfg = parse(k('{\n startup_timeout 10s\n}'));
    const { env, startup, log } = fakeEnv();
    const { s, src } = starters();
    setupKubernetes(cfg, env, { starters: s });
    const t0 = Date.now();
    setTimeout(() => src.sync(), 20);
    for (const f of startup) await f();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(log.lines.some((l) => l.includes('unsynced'))).toBe(false);
  });

  it('logs parse warnings at setup and offers autopath its zones and pod namespaces', () => {
    const cfg = parse(k('cluster.local in-addr.arpa {\n endpoint http://a http://b\n pods verified\n}'));
    const { env, log } = fakeEnv();
    const { s, calls } = starters();
    const h = setupKubernetes(cfg, env, { starters: s });
    expect(log.lines).toContain("[WARNING] Multiple endpoints have been deprecated, only the first specified endpoint 'http://a' is used");
    expect(h.zones).toEqual(['cluster.local.', 'in-addr.arpa.']);
    expect(calls.sink).toBeUndefined();
  });
});
