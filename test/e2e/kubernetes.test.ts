// End to end: the built CLI with a kubernetes Corefile against the test Kubernetes API server
// (real list/watch over HTTP), queried with dig. Changes on the API show up in answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubeApi, type KubeApiServer } from '../kubeapi/server.ts';
import { endpointSlice, externalName, headless, namespace, service } from '../kubeapi/objects.ts';
import { waitFor } from '../kubeapi/objects.ts';
import { dig, haveDig, randomPort, runCli, tempDir, writeCorefile, type Running } from './cli.ts';

describe.runIf(haveDig())('kubernetes plugin end to end (built CLI, test API server, dig)', () => {
  let api: KubeApiServer;
  let srv: Running;
  let port: number;
  let readyPort: number;
  const q = (...args: string[]) => dig(['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args]).stdout;

  beforeAll(async () => {
    api = await startKubeApi();
    api.add(namespace('default'));
    api.add(namespace('shop'));
    api.add(service('shop', 'web', { clusterIP: '10.96.5.5', ports: [{ name: 'http', port: 80 }] }));
    api.add(headless('shop', 'db', { ports: [{ name: 'pg', port: 5432 }] }));
    api.add(endpointSlice('shop', 'db', [
      { ip: '10.244.1.1', hostname: 'db-0' }, { ip: '10.244.1.2', hostname: 'db-1' }, { ip: '10.244.1.3', hostname: 'db-2', ready: false },
    ], [{ name: 'pg', port: 5432 }]));
    api.add(externalName('shop', 'pay', 'payments.example.com'));
    // A headless service too big for a 512-byte UDP answer.
    api.add(headless('shop', 'big'));
    api.add(endpointSlice('shop', 'big', Array.from({ length: 80 }, (_, i) => `10.244.${2 + (i >> 8)}.${i & 255}`)));
    const dir = tempDir();
    port = randomPort();
    readyPort = randomPort();
    const conf = writeCorefile(dir, `.:${port} {
  bind 127.0.0.1
  errors
  ready 127.0.0.1:${readyPort}
  kubernetes cluster.local in-addr.arpa ip6.arpa {
    kubeconfig ${api.kubeconfigFile(dir)}
    pods insecure
    ttl 7
  }
}
`);
    srv = await runCli(['-conf', conf], { ready: /clusterdns-/ });
  });
  afterAll(async () => {
    await srv?.stop();
    await api?.close();
  });

  it('is ready after the first sync', async () => {
    const r = await fetch(`http://127.0.0.1:${readyPort}/ready`);
    expect(r.status).toBe(200);
  });

  it('answers ClusterIP, headless, SRV, ExternalName, PTR and pod names', () => {
    expect(q('web.shop.svc.cluster.local', 'A', '+noall', '+answer')).toMatch(/web\.shop\.svc\.cluster\.local\.\s+7\s+IN\s+A\s+10\.96\.5\.5/);
    const db = q('db.shop.svc.cluster.local', 'A', '+short').trim().split('\n').sort();
    expect(db).toEqual(['10.244.1.1', '10.244.1.2']);
    const srv = q('_pg._tcp.db.shop.svc.cluster.local', 'SRV', '+noall', '+answer', '+additional');
    expect(srv).toMatch(/SRV\s+0 \d+ 5432 db-0\.db\.shop\.svc\.cluster\.local\./);
    expect(srv).toMatch(/db-1\.db\.shop\.svc\.cluster\.local\.\s+7\s+IN\s+A\s+10\.244\.1\.2/);
    expect(srv).not.toContain('db-2');
    expect(q('pay.shop.svc.cluster.local', 'A', '+noall', '+answer')).toMatch(/CNAME\s+payments\.example\.com\./);
    expect(q('-x', '10.96.5.5', '+short').trim()).toBe('web.shop.svc.cluster.local.');
    expect(q('10-244-9-9.shop.pod.cluster.local', 'A', '+short').trim()).toBe('10.244.9.9');
    const nx = q('nope.shop.svc.cluster.local', 'A');
    expect(nx).toContain('status: NXDOMAIN');
    expect(nx).toMatch(/AUTHORITY: 1/);
    expect(q('web.shop.svc.cluster.local', 'TXT')).toMatch(/status: NOERROR[\s\S]*ANSWER: 0/);
  });

  it('truncates a large UDP answer and dig retries over TCP', () => {
    const ignored = q('big.shop.svc.cluster.local', 'A', '+ignore', '+noedns');
    expect(ignored).toMatch(/;; flags:[^;]*\btc\b/);
    const full = q('big.shop.svc.cluster.local', 'A', '+noedns', '+short').trim().split('\n');
    expect(full).toHaveLength(80);
    const small = q('big.shop.svc.cluster.local', 'A', '+bufsize=1232', '+ignore');
    expect(small).toMatch(/;; flags:[^;]*\btc\b/);
  });

  it('follows changes on the API: add, update, delete', async () => {
    api.add(service('shop', 'late', { clusterIP: '10.96.7.7' }));
    await waitFor(() => q('late.shop.svc.cluster.local', 'A', '+short').includes('10.96.7.7'), 5000, 'new service');
    api.update(service('shop', 'late', { clusterIP: '10.96.7.8' }));
    await waitFor(() => q('late.shop.svc.cluster.local', 'A', '+short').includes('10.96.7.8'), 5000, 'updated service');
    api.remove('Service', 'shop', 'late');
    await waitFor(() => q('late.shop.svc.cluster.local', 'A').includes('NXDOMAIN'), 5000, 'deleted service');
  });

  it('keeps answering from the last-known zone while the API is down, then catches up', async () => {
    api.setDown(true);
    api.dropWatches({ abrupt: true });
    await new Promise((r) => setTimeout(r, 300));
    expect(q('web.shop.svc.cluster.local', 'A', '+short').trim()).toBe('10.96.5.5');
    api.setDown(false);
    api.add(service('shop', 'after', { clusterIP: '10.96.8.8' }));
    await waitFor(() => q('after.shop.svc.cluster.local', 'A', '+short').includes('10.96.8.8'), 15000, 'recovery');
  }, 30_000);
});
