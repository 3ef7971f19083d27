import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { memoryLogger } from '../../src/log.ts';
import { RecordingSink, waitFor } from '../../test/kubeapi/objects.ts';
import { startManifestSource, type ManifestSourceOptions } from './source-manifests.ts';
import type { SourceHandle } from './objects.ts';

let dir: string;
let sources: SourceHandle[] = [];

beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'manifests-')); });
afterEach(async () => {
  await Promise.all(sources.map((s) => s.stop()));
  sources = [];
  rmSync(dir, { recursive: true, force: true });
});

function write(rel: string, text: string): string {
  const p = join(dir, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, text);
  return p;
}

function start(paths: string[], opts: ManifestSourceOptions = {}) {
  const sink = new RecordingSink();
  const log = memoryLogger();
  const src = startManifestSource(paths, sink, { log: log.child('plugin/kubernetes') }, opts);
  sources.push(src);
  return { sink, log, src };
}

const webYaml = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  clusterIP: 10.96.10.1
  ports: [{name: http, port: 80}]
---
# an empty document and an unknown kind are fine
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: shop
  labels: {kubernetes.io/service-name: web, app: web}
  annotations: {endpoints.kubernetes.io/last-change-trigger-time: 2024-05-01T10:00:00Z}
addressType: IPv4
endpoints:
- addresses: [10.244.1.1]
  targetRef: {kind: Pod, name: web-1}
ports: [{name: http, port: 8080}]
`;

describe('manifest source', () => {
  it('loads multi-document YAML, JSON and List files from folders recursively', async () => {
    write('shop/web.yaml', webYaml);
    write('data/list.json', JSON.stringify({
      apiVersion: 'v1', kind: 'List', items: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'data', labels: { tier: 'db' } } },
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'postgres', namespace: 'data' }, spec: { clusterIP: 'None', ports: [{ name: 'postgres', port: 5432 }] } },
      ],
    }));
    write('data/typed.yml', 'apiVersion: v1\nkind: PodList\nitems:\n- metadata: {name: pg-0, namespace: data}\n  status: {phase: Running, podIP: 10.244.2.1}\n');
    write('notes.txt', 'not a manifest');
    write('.hidden/x.yaml', 'apiVersion: v1\nkind: Service\nmetadata: {name: hidden}\n');
    const { sink, src, log } = start([dir]);
    await src.synced;
    expect(src.isSynced()).toBe(true);
    expect(src.lastContact()).toBeGreaterThan(0);
    expect(sink.keys('Service')).toEqual(['data/postgres', 'shop/web']);
    expect(sink.keys('EndpointSlice')).toEqual(['shop/web-abc']);
    expect(sink.keys('Pod')).toEqual(['data/pg-0']);
    expect(sink.slices.get('shop/web-abc')).toMatchObject({ service: 'web', changedAt: Date.parse('2024-05-01T10:00:00Z'), endpoints: [{ podName: 'web-1' }] });
    expect(sink.services.get('data/postgres')!.clusterIPs).toEqual(['None']);
    // Namespace data is declared (its labels kept), shop is implied.
    expect(sink.namespaces.get('data')).toEqual({ name: 'data', labels: { tier: 'db', 'kubernetes.io/metadata.name': 'data' } });
    expect(sink.namespaces.get('shop')).toEqual({ name: 'shop', labels: { 'kubernetes.io/metadata.name': 'shop' } });
    expect(sink.callsOf('replaceAll').map((c) => c.kind)).toEqual(['Namespace', 'Service', 'EndpointSlice', 'Pod']);
    expect(log.lines.filter((l) => !l.startsWith('[DEBUG]'))).toEqual([]);
  });

  it('accepts single files and puts objects without a namespace in default', async () => {
    const f = write('one.yaml', 'apiVersion: v1\nkind: Service\nmetadata: {name: kubernetes}\nspec: {clusterIP: 10.96.0.1}\n');
    const { sink, src } = start([f]);
    await src.synced;
    expect(sink.keys('Service')).toEqual(['default/kubernetes']);
    expect(sink.keys('Namespace')).toEqual(['default']);
  });

  it('skips invalid objects, logging the file', async () => {
    const f = write('bad.yaml', `${webYaml}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: broken, namespace: shop}\nspec: {clusterIP: 10.96.0.300}\n---\n- just\n- a list\n`);
    const { sink, src, log } = start([dir]);
    await src.synced;
    expect(sink.keys('Service')).toEqual(['shop/web']);
    expect(log.lines).toContain(`[WARNING] plugin/kubernetes: skipping Service shop/broken in ${f}: invalid cluster IP "10.96.0.300"`);
    expect(log.lines).toContain(`[WARNING] plugin/kubernetes: manifests ${f}: skipping a document that is not an object`);
  });

  it('applies label selectors', async () => {
    write('web.yaml', webYaml);
    write('other.yaml', 'apiVersion: v1\nkind: Service\nmetadata: {name: other, namespace: shop}\nspec: {clusterIP: 10.96.10.2}\n');
    const { sink, src } = start([dir], { labels: 'app=web', namespaceLabels: 'kubernetes.io/metadata.name notin (kube-system)' });
    await src.synced;
    expect(sink.keys('Service')).toEqual(['shop/web']);
    expect(sink.keys('EndpointSlice')).toEqual(['shop/web-abc']);
    expect(sink.keys('Namespace')).toEqual(['shop']);
    expect(() => start([dir], { labels: 'a in (' })).toThrow(/invalid label selector/);
  });

  it('reloads on change, keeps a broken file\'s last good objects, and drops deleted files', async () => {
    const web = write('web.yaml', webYaml);
    const db = write('db.yaml', 'apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: data}\nspec: {clusterIP: 10.96.20.1}\n');
    const { sink, src, log } = start([dir], { watch: true, debounceMs: 20, pollMs: 200 });
    await src.synced;
    expect(sink.keys('Service')).toEqual(['data/db', 'shop/web']);
    const replaced = () => sink.callsOf('replaceAll', 'Service').length;
    const before = replaced();

    writeFileSync(db, 'apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: data}\nspec: {clusterIP: 10.96.20.2}\n');
    await waitFor(() => sink.services.get('data/db')!.clusterIPs[0] === '10.96.20.2', 3000, 'reload after change');
    expect(replaced()).toBe(before + 1);
    // Unchanged kinds are not re-fed.
    expect(sink.callsOf('replaceAll', 'EndpointSlice')).toHaveLength(1);

    writeFileSync(web, 'apiVersion: v1\nkind: Service\nmetadata: {name: web\n  namespace: [oops\n');
    await waitFor(() => log.lines.some((l) => l.includes(`manifests ${web}:`) && l.includes('keeping its last good objects')), 3000, 'parse error logged');
    expect(sink.keys('Service')).toEqual(['data/db', 'shop/web']);
    expect(sink.keys('EndpointSlice')).toEqual(['shop/web-abc']);
    // Polls do not re-log the same broken file.
    await new Promise((r) => setTimeout(r, 500));
    expect(log.lines.filter((l) => l.includes('keeping its last good objects'))).toHaveLength(1);

    writeFileSync(web, webYaml.replace('10.96.10.1', '10.96.10.9'));
    await waitFor(() => sink.services.get('shop/web')?.clusterIPs[0] === '10.96.10.9', 3000, 'fixed file reloaded');

    unlinkSync(db);
    await waitFor(() => !sink.services.has('data/db'), 3000, 'deleted file dropped');
    expect(sink.keys('Namespace')).toEqual(['shop']);

    write('sub/new.yaml', 'apiVersion: v1\nkind: Service\nmetadata: {name: fresh, namespace: data}\nspec: {clusterIP: 10.96.20.3}\n');
    await waitFor(() => sink.services.has('data/fresh'), 3000, 'new file in a new folder');
    const t = src.lastContact();
    await waitFor(() => src.lastContact() > t, 3000, 'polls count as contact');
  });

  it('with every path watched, polls only as a 30 s safety net (file events bring changes)', async () => {
    write('a.yaml', 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n');
    const { sink, src } = start([dir], { watch: true, debounceMs: 20 });
    await src.synced;
    const t = src.lastContact();
    // The unwatched poll would have run by now (every 2 s); the change still arrives through fs.watch.
    await new Promise((r) => setTimeout(r, 2300));
    expect(src.lastContact()).toBe(t);
    write('b.yaml', 'apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n');
    await waitFor(() => sink.keys('Namespace').includes('b'), 3000, 'change through fs.watch');
  });

  it('without watch, loads once', async () => {
    const f = write('a.yaml', 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n');
    const { sink, src } = start([f]);
    await src.synced;
    writeFileSync(f, 'apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n');
    await new Promise((r) => setTimeout(r, 300));
    expect(sink.keys('Namespace')).toEqual(['a']);
  });

  it('logs a missing path and still syncs', async () => {
    const { sink, src, log } = start([join(dir, 'nope')]);
    await src.synced;
    expect(sink.keys('Service')).toEqual([]);
    expect(log.lines.some((l) => l.startsWith('[ERROR] plugin/kubernetes: manifests') && l.includes('ENOENT'))).toBe(true);
  });

  it('loads the bundled example cluster cleanly', async () => {
    const cluster = join(dirname(fileURLToPath(import.meta.url)), '../../deploy/example/cluster');
    const { sink, src, log } = start([cluster]);
    await src.synced;
    expect(log.lines.filter((l) => !l.startsWith('[DEBUG]'))).toEqual([]);
    expect(sink.keys('Namespace')).toEqual(['data', 'default', 'kube-system', 'shop']);
    expect(sink.keys('Service')).toEqual([
      'data/postgres', 'data/redis', 'default/kubernetes', 'kube-system/kube-dns',
      'shop/api', 'shop/cart-alias', 'shop/checkout', 'shop/web',
    ]);
    expect(sink.services.get('kube-system/kube-dns')).toMatchObject({ clusterIPs: ['10.96.0.10'] });
    expect(sink.services.get('shop/api')!.clusterIPs).toHaveLength(2);
    expect(sink.services.get('shop/checkout')).toMatchObject({ type: 'ExternalName', externalName: 'payments.example.com' });
    const pg = [...sink.slices.values()].filter((s) => s.service === 'postgres').flatMap((s) => s.endpoints);
    expect(pg.map((e) => [e.hostname, e.ready])).toEqual([['postgres-0', true], ['postgres-1', true], ['postgres-2', false]]);
  });
});
