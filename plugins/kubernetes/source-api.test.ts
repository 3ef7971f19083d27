// The API source driven through the real @kubernetes/client-node informer (ListWatch over Watch) against
// the test API server, into a recording sink. Lists and credentials are api-client.ts's.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { startKubeApi, type KubeApiServer } from '../../test/kubeapi/server.ts';
import { endpointSlice, namespace, pod, RecordingSink, service, waitFor } from '../../test/kubeapi/objects.ts';
import { resolveConnection, startApiSource, type ApiSourceConfig } from './source-api.ts';
import type { SourceHandle } from './objects.ts';

const fast = { initialMs: 50, maxMs: 200 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let api: KubeApiServer;
let dir: string;
let sources: SourceHandle[] = [];

beforeEach(async () => {
  api = await startKubeApi();
  dir = mkdtempSync(join(tmpdir(), 'kubeapi-'));
});

afterEach(async () => {
  await Promise.all(sources.map((s) => s.stop()));
  sources = [];
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

function seed(): void {
  api.add(namespace('default'));
  api.add(namespace('shop', { team: 'shop' }));
  api.add(service('default', 'kubernetes', { clusterIP: '10.96.0.1', ports: [{ name: 'https', port: 443 }] }));
  api.add(service('shop', 'web', { clusterIP: '10.96.10.1', ports: [{ name: 'http', port: 80 }], labels: { app: 'web' } }));
  api.add(endpointSlice('shop', 'web', [{ ip: '10.244.1.1', pod: 'web-1' }, { ip: '10.244.1.2', ready: false }], [{ name: 'http', port: 8080 }], { labels: { app: 'web' } }));
}

function start(extra: Partial<ApiSourceConfig> = {}) {
  const sink = new RecordingSink();
  const log = memoryLogger();
  const metrics = new Metrics();
  const src = startApiSource({ kubeconfig: { file: api.kubeconfigFile(dir) }, watchPods: false, backoff: fast, ...extra }, sink,
    { log: log.child('plugin/kubernetes'), metrics });
  sources.push(src);
  return { sink, log, metrics, src };
}

async function metricValue(metrics: Metrics, name: string, labels: string): Promise<number | undefined> {
  const text = await metrics.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

describe('API source: initial sync', () => {
  it('lists every kind once with replaceAll, then resolves synced and watches from the list resourceVersion', async () => {
    seed();
    const { sink, src, log } = start();
    expect(src.isSynced()).toBe(false);
    await src.synced;
    expect(src.isSynced()).toBe(true);
    expect(src.lastContact()).toBeGreaterThan(Date.now() - 5000);

    const replaced = sink.callsOf('replaceAll');
    expect(replaced.map((c) => c.kind).sort()).toEqual(['EndpointSlice', 'Namespace', 'Service']);
    // ListWatch's per-object add callbacks while applying the list are not fed twice.
    expect(sink.callsOf('upsert')).toEqual([]);
    expect(sink.keys('Service')).toEqual(['default/kubernetes', 'shop/web']);
    expect(sink.keys('Namespace')).toEqual(['default', 'shop']);
    expect(sink.services.get('shop/web')).toMatchObject({ clusterIPs: ['10.96.10.1'], ports: [{ name: 'http', port: 80, protocol: 'TCP' }] });
    expect(sink.slices.get('shop/web-ipv4')).toMatchObject({
      service: 'web',
      endpoints: [
        { addresses: ['10.244.1.1'], ready: true, podName: 'web-1' },
        { addresses: ['10.244.1.2'], ready: false },
      ],
    });

    // Watches resume from the list's resourceVersion, with bookmarks requested.
    await waitFor(() => api.watchCount === 3, 5000, 'three watches');
    const listRv = api.resourceVersion;
    for (const path of ['/api/v1/services', '/apis/discovery.k8s.io/v1/endpointslices', '/api/v1/namespaces']) {
      const [list] = api.requestsTo(path, false);
      expect(list!.query.limit).toBe('500');
      const [watch] = api.requestsTo(path, true);
      expect(watch!.query).toMatchObject({ resourceVersion: listRv, allowWatchBookmarks: 'true' });
      expect(Number(watch!.query.timeoutSeconds)).toBeGreaterThanOrEqual(300);
    }
    expect(api.requestsTo('/api/v1/pods')).toEqual([]);
    expect(log.lines.filter((l) => l.startsWith('[WARNING]') || l.startsWith('[ERROR]'))).toEqual([]);
  });

  it('pages through big lists with limit/continue', async () => {
    api.add(namespace('shop'));
    for (let i = 0; i < 7; i++) api.add(service('shop', `svc-${i}`));
    const { sink, src } = start({ pageSize: 3 });
    await src.synced;
    expect(sink.keys('Service')).toHaveLength(7);
    const lists = api.requestsTo('/api/v1/services', false);
    expect(lists).toHaveLength(3);
    expect(lists[1]!.query.continue).toBeTruthy();
    // Each page reaches the sink as it arrives (the list is never held whole), then one end.
    expect(sink.callsOf('page', 'Service').map((c) => (c.op === 'page' ? c.keys.length : 0))).toEqual([3, 3, 1]);
    expect(sink.callsOf('replaceAll', 'Service')).toHaveLength(1);
  });

  it('hands a page to the sink in batches of 50 converted records, skipping invalid ones', async () => {
    api.add(namespace('shop'));
    for (let i = 0; i < 120; i++) api.add(service('shop', `svc-${String(i).padStart(3, '0')}`, i === 60 ? { clusterIP: '300.1.1.1' } : {}));
    const { sink, src, log } = start();
    await src.synced;
    expect(api.requestsTo('/api/v1/services', false)).toHaveLength(1); // one page of 500
    // Records reach the zone while the page is still being read, so none of them outlives a scavenge.
    expect(sink.callsOf('page', 'Service').map((c) => (c.op === 'page' ? c.keys.length : 0))).toEqual([50, 50, 19]);
    expect(sink.keys('Service')).toHaveLength(119);
    expect(sink.services.has('shop/svc-060')).toBe(false);
    expect(log.lines.some((l) => l.includes('skipping Service shop/svc-060'))).toBe(true);
  });

  it('a paged relist deletes what vanished only at its end, and keeps what stayed', async () => {
    api.add(namespace('shop'));
    for (let i = 0; i < 7; i++) api.add(service('shop', `svc-${i}`));
    const { sink, src } = start({ pageSize: 3 });
    await src.synced;
    await waitFor(() => api.watchCount === 3);
    api.dropWatches();
    api.remove('Service', 'shop', 'svc-0');
    api.remove('Service', 'shop', 'svc-6');
    api.add(service('shop', 'svc-7'));
    api.compactHistory();
    await waitFor(() => sink.callsOf('replaceAll', 'Service').length === 2, 5000, 'relist');
    expect(sink.keys('Service')).toEqual(['shop/svc-1', 'shop/svc-2', 'shop/svc-3', 'shop/svc-4', 'shop/svc-5', 'shop/svc-7']);
    const relist = sink.calls.slice(sink.calls.findIndex((c) => c.op === 'replaceAll' && c.kind === 'Service') + 1)
      .filter((c) => c.kind === 'Service');
    expect(relist.map((c) => c.op)).toEqual(['page', 'page', 'replaceAll']);
    // No per-object callbacks from ListWatch: it holds no copy of the objects.
    expect(sink.callsOf('upsert')).toEqual([]);
    expect(sink.callsOf('delete')).toEqual([]);
    // And events after the relist still arrive.
    api.add(service('shop', 'svc-8'));
    await waitFor(() => sink.services.get('shop/svc-8'), 5000, 'event after the relist');
  });
});

describe('API source: watch events', () => {
  it('feeds adds, updates and deletes', async () => {
    seed();
    const { sink, src } = start();
    await src.synced;
    await waitFor(() => api.watchCount === 3);

    api.add(service('shop', 'api', { clusterIPs: ['10.96.10.2', 'fd00:10:96::2'], ports: [{ name: 'grpc', port: 9090 }] }));
    await waitFor(() => sink.services.get('shop/api'));
    expect(sink.services.get('shop/api')!.clusterIPs).toEqual(['10.96.10.2', 'fd00:10:96::2']);

    const web = api.get('Service', 'shop', 'web')!;
    (web.spec as { ports: unknown[] }).ports = [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'https', port: 443, protocol: 'TCP' }];
    api.update(web);
    await waitFor(() => sink.services.get('shop/web')!.ports.length === 2);

    api.add(endpointSlice('shop', 'api', ['10.244.2.1'], [{ name: 'grpc', port: 9090 }]));
    await waitFor(() => sink.slices.get('shop/api-ipv4'));

    api.remove('Service', 'shop', 'api');
    api.remove('EndpointSlice', 'shop', 'api-ipv4');
    api.remove('Namespace', undefined, 'default');
    await waitFor(() => !sink.services.has('shop/api') && !sink.slices.has('shop/api-ipv4') && !sink.namespaces.has('default'));
    expect(sink.calls.filter((c) => c.op === 'delete').map((c) => `${c.kind} ${'key' in c ? c.key : ''}`).sort())
      .toEqual(['EndpointSlice shop/api-ipv4', 'Namespace default', 'Service shop/api']);
  });

  it('bookmarks count as contact and move the resume point', async () => {
    seed();
    const { src } = start();
    await src.synced;
    await waitFor(() => api.watchCount === 3);
    // Changes to pods nobody watches move the global resourceVersion past what the services watch saw.
    api.add(namespace('other'));
    api.remove('Namespace', undefined, 'other');
    const before = src.lastContact();
    await sleep(30);
    api.sendBookmarks();
    await waitFor(() => src.lastContact() > before, 2000, 'lastContact to advance on bookmarks');
    const bookmarkRv = api.resourceVersion;
    const watchesBefore = api.requestsTo('/api/v1/services', true).length;
    api.dropWatches();
    await waitFor(() => api.requestsTo('/api/v1/services', true).length > watchesBefore);
    expect(api.requestsTo('/api/v1/services', true).at(-1)!.query.resourceVersion).toBe(bookmarkRv);
  });
});

describe('API source: failures', () => {
  it('resumes a dropped watch from its resourceVersion without relisting', async () => {
    seed();
    const { sink, src, metrics } = start();
    await src.synced;
    await waitFor(() => api.watchCount === 3);
    const lists = api.requests.filter((r) => !r.watch).length;

    // Clean end of stream (server timeout, apiserver restart): ListWatch reconnects by itself.
    api.dropWatches();
    api.add(service('shop', 'late', { clusterIP: '10.96.10.9' }));
    await waitFor(() => sink.services.get('shop/late'), 5000, 'event after a clean drop');

    // Abrupt cut: client-node's ListWatch reports an error and stops; we restart it.
    await waitFor(() => api.watchCount === 3);
    api.dropWatches({ abrupt: true });
    api.add(service('shop', 'later', { clusterIP: '10.96.10.10' }));
    await waitFor(() => sink.services.get('shop/later'), 5000, 'event after an abrupt drop');
    expect(api.requests.filter((r) => !r.watch).length).toBe(lists);
    expect(await metricValue(metrics, 'coredns_kubernetes_watch_restarts_total', 'kind="services"')).toBeGreaterThanOrEqual(1);
  });

  it('relists after 410 Gone and drops objects that vanished meanwhile', async () => {
    seed();
    api.add(service('shop', 'doomed', { clusterIP: '10.96.10.66' }));
    const { sink, src } = start();
    await src.synced;
    await waitFor(() => api.watchCount === 3);
    expect(sink.services.has('shop/doomed')).toBe(true);
    const listsBefore = api.requestsTo('/api/v1/services', false).length;

    // The client misses these events (its streams are cut first) and the history is compacted, so its
    // resume point is too old: the server answers with a 410 ERROR event.
    api.dropWatches();
    api.remove('Service', 'shop', 'doomed');
    api.add(service('shop', 'newcomer', { clusterIP: '10.96.10.77' }));
    api.compactHistory();

    await waitFor(() => !sink.services.has('shop/doomed') && sink.services.has('shop/newcomer'), 5000, 'relist');
    expect(api.requestsTo('/api/v1/services', false).length).toBe(listsBefore + 1);
    expect(sink.callsOf('replaceAll', 'Service')).toHaveLength(2);
    expect(src.isSynced()).toBe(true);
  });

  it('is not synced while the API is down at startup, and syncs when it comes up', async () => {
    seed();
    api.setDown(true);
    const { sink, src, log, metrics } = start();
    let synced = false;
    void src.synced.then(() => { synced = true; });
    await waitFor(() => log.lines.some((l) => l.includes('watch of services failed: HTTP 500')), 3000, 'failure log');
    await sleep(300);
    expect(synced).toBe(false);
    expect(src.isSynced()).toBe(false);
    expect(src.lastContact()).toBe(0);
    expect(sink.calls).toEqual([]);
    // Logged once per state change, not on every retry.
    expect(log.lines.filter((l) => l.startsWith('[WARNING]') && l.includes('watch of services failed'))).toHaveLength(1);
    expect(log.lines.find((l) => l.includes('watch of services failed'))).toMatch(/^\[WARNING\] plugin\/kubernetes: watch of services failed: HTTP 500: etcdserver: request timed out; retrying in \d+ms$/);
    expect(await metricValue(metrics, 'coredns_kubernetes_watch_restarts_total', 'kind="services"')).toBeGreaterThanOrEqual(2);

    api.setDown(false);
    await src.synced;
    expect(sink.keys('Service')).toEqual(['default/kubernetes', 'shop/web']);
    await waitFor(() => log.lines.some((l) => l.includes('watch of services recovered')));
  });

  it('stops advancing lastContact while the API is down later, and recovers', async () => {
    seed();
    const { sink, src, log, metrics } = start();
    await src.synced;
    await waitFor(() => api.watchCount === 3);
    const restartsBefore = (await metricValue(metrics, 'coredns_kubernetes_watch_restarts_total', 'kind="services"')) ?? 0;

    api.setDown(true, 'reset');
    await sleep(50);
    const frozen = src.lastContact();
    api.add(service('shop', 'while-down', { clusterIP: '10.96.10.50' }));
    await sleep(400);
    expect(src.lastContact()).toBe(frozen);
    expect(sink.services.has('shop/while-down')).toBe(false);
    expect(await metricValue(metrics, 'coredns_kubernetes_watch_restarts_total', 'kind="services"')).toBeGreaterThan(restartsBefore);
    const age = await metricValue(metrics, 'coredns_kubernetes_last_contact_age_seconds', 'kind="services"');
    expect(age).toBeGreaterThan(0.3);
    // Data already held stays (DNS keeps answering from the last known state).
    expect(sink.services.has('shop/web')).toBe(true);

    api.setDown(false);
    await waitFor(() => sink.services.get('shop/while-down'), 5000, 'recovery');
    // lastContact is the oldest across resources: it moves once every watch is back.
    await waitFor(() => src.lastContact() > frozen, 5000, 'lastContact to advance');
    expect(log.lines.some((l) => l.includes('watch of services failed') && l.includes('retrying in'))).toBe(true);
    await waitFor(() => log.lines.some((l) => l.includes('watch of services recovered')));
  });

  it('skips and logs invalid objects, and drops ones that turn invalid', async () => {
    seed();
    api.add(service('shop', 'broken', { clusterIP: '300.1.1.1' }));
    const { sink, src, log } = start();
    await src.synced;
    expect(sink.services.has('shop/broken')).toBe(false);
    expect(log.lines).toContain('[WARNING] plugin/kubernetes: skipping Service shop/broken: invalid cluster IP "300.1.1.1"');

    await waitFor(() => api.watchCount === 3);
    const web = api.get('Service', 'shop', 'web')!;
    (web.spec as { ports: unknown[] }).ports = [{ name: 'http', port: 70000 }];
    api.update(web);
    await waitFor(() => !sink.services.has('shop/web'), 3000, 'invalid update to delete');
    expect(log.lines.some((l) => l.includes('skipping Service shop/web: spec.ports[0].port 70000 is not a port number'))).toBe(true);
    // The watch carries on.
    api.add(service('shop', 'fine', { clusterIP: '10.96.10.3' }));
    await waitFor(() => sink.services.has('shop/fine'));
  });
});

describe('API source: selection', () => {
  it('passes label selectors to the server and follows objects leaving the selection', async () => {
    seed();
    api.add(namespace('hidden'));
    api.add(service('shop', 'internal', { clusterIP: '10.96.10.4', labels: { app: 'internal' } }));
    const { sink, src } = start({ labels: 'app=web', namespaceLabels: 'team in (shop)' });
    await src.synced;
    expect(sink.keys('Service')).toEqual(['shop/web']);
    expect(sink.keys('EndpointSlice')).toEqual(['shop/web-ipv4']);
    expect(sink.keys('Namespace')).toEqual(['shop']);
    for (const path of ['/api/v1/services', '/apis/discovery.k8s.io/v1/endpointslices']) {
      for (const r of api.requestsTo(path)) expect(r.query.labelSelector).toBe('app=web');
    }
    await waitFor(() => api.watchCount === 3);
    for (const r of api.requestsTo('/api/v1/namespaces')) expect(r.query.labelSelector).toBe('team in (shop)');

    const web = api.get('Service', 'shop', 'web')!;
    web.metadata.labels = { app: 'other' };
    api.update(web);
    await waitFor(() => !sink.services.has('shop/web'), 3000, 'leaving the selection');
  });

  it('rejects a bad selector at start', () => {
    expect(() => start({ labels: 'app in (' })).toThrow(/labels: invalid label selector/);
  });

  it('watches pods only with watchPods, keeping running ones', async () => {
    seed();
    api.add(pod('shop', 'web-1', '10.244.1.1'));
    api.add(pod('shop', 'web-2', '10.244.1.2', 'Pending'));
    api.add(pod('shop', 'web-3', '10.244.1.3', 'Running', { deleting: true }));
    const without = start();
    await without.src.synced;
    expect(api.requestsTo('/api/v1/pods')).toEqual([]);
    expect(without.sink.keys('Pod')).toEqual([]);

    const { sink, src } = start({ watchPods: true });
    await src.synced;
    expect(sink.callsOf('replaceAll', 'Pod')).toHaveLength(1);
    expect(sink.keys('Pod')).toEqual(['shop/web-1']);
    await waitFor(() => api.watchCount === 7);

    const p2 = api.get('Pod', 'shop', 'web-2')!;
    (p2.status as { phase: string }).phase = 'Running';
    api.update(p2);
    await waitFor(() => sink.pods.has('shop/web-2'));
    const p1 = api.get('Pod', 'shop', 'web-1')!;
    (p1.status as { phase: string }).phase = 'Succeeded';
    api.update(p1);
    await waitFor(() => !sink.pods.has('shop/web-1'), 3000, 'finished pod dropped');
    expect(sink.pods.get('shop/web-2')!.ips).toEqual(['10.244.1.2']);
  });
});

describe('API source: lifecycle and configuration', () => {
  it('stop() closes the watches and makes no further requests', async () => {
    seed();
    const { src } = start();
    await src.synced;
    await waitFor(() => api.watchCount === 3);
    await src.stop();
    await waitFor(() => api.watchCount === 0, 2000, 'watches closed');
    const n = api.requests.length;
    api.dropWatches();
    await sleep(200);
    expect(api.requests.length).toBe(n);
  });

  it('stop() during a backoff cancels the restart', async () => {
    api.setDown(true);
    const { src, log } = start({ backoff: { initialMs: 100, maxMs: 100 } });
    await waitFor(() => log.lines.some((l) => l.includes('failed')));
    await src.stop();
    await sleep(50); // a request already on the wire when stop() ran
    const n = api.requests.length;
    await sleep(300);
    expect(api.requests.length).toBe(n);
  });

  it('uses an endpoint URL directly', async () => {
    const open = await startKubeApi({ token: null });
    try {
      open.add(namespace('default'));
      const sink = new RecordingSink();
      const src = startApiSource({ endpoint: open.url, watchPods: false, backoff: fast }, sink, { log: memoryLogger(), metrics: new Metrics() });
      sources.push(src);
      await src.synced;
      expect(sink.keys('Namespace')).toEqual(['default']);
      await src.stop();
    } finally {
      await open.close();
    }
  });

  it('resolves configuration: endpoint, kubeconfig context', () => {
    expect(resolveConnection({ endpoint: 'http://127.0.0.1:8001/' })).toMatchObject({ server: 'http://127.0.0.1:8001', tls: {} });
    expect(() => resolveConnection({ endpoint: 'not a url' })).toThrow(/invalid endpoint/);
    expect(() => resolveConnection({ endpoint: 'ftp://x' })).toThrow(/not http or https/);

    const file = api.kubeconfigFile(dir, { context: 'ctx-a' });
    expect(resolveConnection({ kubeconfig: { file, context: 'ctx-a' } })).toMatchObject({ server: api.url, token: 'test-token', origin: `${file}, context ctx-a` });
    expect(() => resolveConnection({ kubeconfig: { file, context: 'nope' } })).toThrow(/context "nope" not found/);
    expect(() => resolveConnection({ kubeconfig: { file: join(dir, 'missing') } })).toThrow(/cannot read kubeconfig .*missing: ENOENT/);
  });
});

describe('test API server protocol', () => {
  async function lines(path: string, until: (ls: unknown[]) => boolean): Promise<unknown[]> {
    const res = await fetch(api.url + path, { headers: { authorization: 'Bearer test-token' } });
    expect(res.status).toBe(200);
    const out: unknown[] = [];
    const reader = res.body!.getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (value) buf += new TextDecoder().decode(value);
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) { out.push(JSON.parse(buf.slice(0, nl))); buf = buf.slice(nl + 1); }
      if (done || until(out)) break;
    }
    await reader.cancel().catch(() => {});
    return out;
  }

  it('lists without per-item kind, and rejects requests without the token', async () => {
    api.add(namespace('a'));
    const list = await (await fetch(`${api.url}/api/v1/namespaces`, { headers: { authorization: 'Bearer test-token' } })).json() as { kind: string; metadata: { resourceVersion: string }; items: Array<Record<string, unknown>> };
    expect(list.kind).toBe('NamespaceList');
    expect(list.metadata.resourceVersion).toBe(api.resourceVersion);
    expect(list.items[0]).not.toHaveProperty('kind');
    expect((await fetch(`${api.url}/api/v1/namespaces`)).status).toBe(401);
  });

  it('answers a too-old resourceVersion with a 410 ERROR event, and honours timeoutSeconds with a last bookmark', async () => {
    api.add(namespace('a'));
    const rv = Number(api.resourceVersion);
    api.add(namespace('b'));
    api.compactHistory();
    const gone = await lines(`/api/v1/namespaces?watch=true&resourceVersion=${rv}`, () => false);
    expect(gone).toEqual([{ type: 'ERROR', object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired' }) }]);

    const t0 = Date.now();
    const evs = await lines(`/api/v1/namespaces?watch=true&resourceVersion=${api.resourceVersion}&allowWatchBookmarks=true&timeoutSeconds=1`, () => false);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(evs).toEqual([{ type: 'BOOKMARK', object: { kind: 'Namespace', apiVersion: 'v1', metadata: { resourceVersion: api.resourceVersion } } }]);
  });

  it('sends DELETED when an object leaves the selector, ADDED when it enters', async () => {
    api.add(service('a', 's', { labels: { app: 'x' } }));
    const from = api.resourceVersion;
    const s = api.get('Service', 'a', 's')!;
    s.metadata.labels = { app: 'y' };
    api.update(s);
    s.metadata.labels = { app: 'x' };
    api.update(s);
    const evs = await lines(`/api/v1/services?watch=true&resourceVersion=${from}&labelSelector=app%3Dx`, (ls) => ls.length >= 2) as Array<{ type: string; object: { metadata: { labels: Record<string, string> } } }>;
    expect(evs.map((e) => [e.type, e.object.metadata.labels.app])).toEqual([['DELETED', 'x'], ['ADDED', 'x']]);
  });
});
