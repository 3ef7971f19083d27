// Connection settings (endpoint + tls, kubeconfig, in-cluster, $KUBECONFIG) and the requests made with
// them: TLS with a CA and a client certificate (through client-node's Watch too), rotated token files,
// and the KubeConfig fallback for exec credential plugins.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { memoryLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { endpointSlice, namespace, RecordingSink, service } from '../../test/kubeapi/objects.ts';
import { startKubeApi, type KubeApiServer } from '../../test/kubeapi/server.ts';
import { ApiClient, ApiStatusError, mergeKubeconfigs, resolveConnection, type RawKubeconfig } from './api-client.ts';
import type { SourceHandle } from './objects.ts';
import { startApiSource } from './source-api.ts';

let dir: string;
let api: KubeApiServer | undefined;
const closers: Array<() => Promise<unknown>> = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'apiclient-'));
});

afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await api?.close();
  api = undefined;
  rmSync(dir, { recursive: true, force: true });
  vi.restoreAllMocks();
});

function write(name: string, content: string | object): string {
  const file = join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>, extra: Partial<RawKubeconfig> = {}): object {
  return {
    apiVersion: 'v1', kind: 'Config',
    clusters: [{ name: 'c', cluster }], users: [{ name: 'u', user }], contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'ctx', ...extra,
  };
}

describe('resolveConnection', () => {
  it('reads endpoint + tls files', () => {
    const [cert, key, ca] = ['cert', 'key', 'ca'].map((n) => write(n, `${n}-pem`));
    const conn = resolveConnection({ endpoint: 'https://10.0.0.1:6443/', tls: { cert: cert!, key: key!, ca: ca! } });
    expect(conn.server).toBe('https://10.0.0.1:6443');
    expect(conn.tls.ca?.toString()).toBe('ca-pem');
    expect(conn.tls.cert?.toString()).toBe('cert-pem');
    expect(conn.tls.key?.toString()).toBe('key-pem');
    expect(() => resolveConnection({ endpoint: 'https://x', tls: { cert: cert!, key: key!, ca: join(dir, 'nope') } })).toThrow(/cannot read CA file .*nope: ENOENT/);
  });

  it('reads a kubeconfig: paths relative to the file, inline data, token file, basic auth, impersonation', () => {
    mkdirSync(join(dir, 'pki'));
    write('pki/ca.crt', 'ca-pem');
    write('pki/token', 'tok\n');
    const file = write('config', kubeconfig(
      { server: 'https://api.example:6443/', 'certificate-authority': 'pki/ca.crt', 'tls-server-name': 'kubernetes', 'insecure-skip-tls-verify': false },
      { 'client-certificate-data': Buffer.from('cert-pem').toString('base64'), 'client-key-data': Buffer.from('key-pem').toString('base64'), 'token-file': 'pki/token', as: 'admin' },
    ));
    const conn = resolveConnection({ kubeconfig: { file } });
    expect(conn).toMatchObject({ server: 'https://api.example:6443', origin: `${file}, context ctx`, tokenFile: join(dir, 'pki/token'), impersonate: 'admin' });
    expect(conn.tls.servername).toBe('kubernetes');
    expect(conn.tls.rejectUnauthorized).toBeUndefined();
    expect([conn.tls.ca, conn.tls.cert, conn.tls.key].map(String)).toEqual(['ca-pem', 'cert-pem', 'key-pem']);
    expect(conn.kubeConfig).toBeUndefined();

    const basic = write('basic', kubeconfig({ server: 'https://a', 'insecure-skip-tls-verify': true }, { username: 'me', password: 'pw' }));
    expect(resolveConnection({ kubeconfig: { file: basic } })).toMatchObject({ basicAuth: 'me:pw', tls: { rejectUnauthorized: false } });
  });

  it('refuses broken kubeconfigs with a reason', () => {
    const cfg = kubeconfig({ server: 'https://a' }, { token: 't' });
    const noCurrent = write('a', { ...cfg, 'current-context': undefined });
    expect(() => resolveConnection({ kubeconfig: { file: noCurrent } })).toThrow(/names no current context/);
    const noUser = write('b', { ...cfg, users: [] });
    expect(() => resolveConnection({ kubeconfig: { file: noUser } })).toThrow(/user "u" of context "ctx" not found/);
    const noCluster = write('c', { ...cfg, clusters: [] });
    expect(() => resolveConnection({ kubeconfig: { file: noCluster } })).toThrow(/cluster "c" of context "ctx" not found/);
    const noServer = write('d', kubeconfig({}, {}));
    expect(() => resolveConnection({ kubeconfig: { file: noServer } })).toThrow(/has no server/);
    const notYaml = write('e', 'clusters: [');
    expect(() => resolveConnection({ kubeconfig: { file: notYaml } })).toThrow(new RegExp(notYaml));
    const missingCa = write('f', kubeconfig({ server: 'https://a', 'certificate-authority': 'gone.crt' }, {}));
    expect(() => resolveConnection({ kubeconfig: { file: missingCa } })).toThrow(/cannot read certificate-authority .*gone\.crt/);
    const certOnly = write('g', kubeconfig({ server: 'https://a' }, { 'client-certificate-data': 'Y2VydA==' }));
    expect(() => resolveConnection({ kubeconfig: { file: certOnly } })).toThrow(/user "u" in .* has a client certificate without a key/);
  });

  it('leaves exec plugins, auth providers and proxies to client-node\'s KubeConfig', () => {
    const exec = write('exec', kubeconfig({ server: 'https://a' }, { exec: { command: 'get-token', apiVersion: 'client.authentication.k8s.io/v1' } }));
    expect(resolveConnection({ kubeconfig: { file: exec } }).kubeConfig).toMatchObject({ context: 'ctx', reason: 'an exec credential plugin' });
    const oidc = write('oidc', kubeconfig({ server: 'https://a' }, { 'auth-provider': { name: 'oidc' } }));
    expect(resolveConnection({ kubeconfig: { file: oidc } }).kubeConfig?.reason).toBe('an auth provider');
    const proxy = write('proxy', kubeconfig({ server: 'https://a', 'proxy-url': 'http://proxy:3128' }, {}));
    expect(resolveConnection({ kubeconfig: { file: proxy } }).kubeConfig?.reason).toBe('a proxy-url');
  });

  it('in cluster: service host and port, the service account token and CA', () => {
    const sa = join(dir, 'sa');
    mkdirSync(sa);
    const env = { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' };
    expect(() => resolveConnection({}, { env, serviceAccountDir: sa })).toThrow(/cannot read service account token/);
    writeFileSync(join(sa, 'token'), 'sa-token');
    writeFileSync(join(sa, 'ca.crt'), 'sa-ca');
    const conn = resolveConnection({}, { env, serviceAccountDir: sa });
    expect(conn).toMatchObject({ server: 'https://[fd00::1]:443', origin: 'in-cluster service account', tokenFile: join(sa, 'token') });
    expect(String(conn.tls.ca)).toBe('sa-ca');
    expect(resolveConnection({}, { env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '8080' }, serviceAccountDir: sa }).server).toBe('http://10.96.0.1:8080');
  });

  it('$KUBECONFIG: files merged as kubectl does (the first to define a name wins), then ~/.kube/config, else an error', () => {
    const a = write('a', { clusters: [{ name: 'c', cluster: { server: 'https://first' } }], 'current-context': 'ctx' });
    const b = write('b', kubeconfig({ server: 'https://second' }, { token: 't' }, { 'current-context': 'other' }));
    expect(resolveConnection({}, { env: { KUBECONFIG: `${a}:${b}` } })).toMatchObject({ server: 'https://first', token: 't' });
    expect(mergeKubeconfigs([{ clusters: [], users: [], contexts: [] }, { clusters: [], users: [], contexts: [], 'current-context': 'x' }])['current-context']).toBe('x');

    mkdirSync(join(dir, '.kube'));
    write('.kube/config', kubeconfig({ server: 'https://home' }, {}));
    expect(resolveConnection({}, { env: { HOME: dir } }).server).toBe('https://home');
    expect(() => resolveConnection({}, { env: { HOME: join(dir, 'nowhere') } })).toThrow(/no Kubernetes API to connect to/);
  });
});

describe('ApiClient requests', () => {
  it('lists with the bearer token, and turns a Status answer into ApiStatusError', async () => {
    api = await startKubeApi();
    api.add(namespace('default'));
    const client = new ApiClient(resolveConnection({ kubeconfig: { file: api.kubeconfigFile(dir) } }));
    closers.push(() => client.close());
    const page = await client.list('/api/v1/namespaces', { limit: 10, labelSelector: undefined }, AbortSignal.timeout(5000));
    expect(page.items).toHaveLength(1);
    expect(page.items.at(0)).toMatchObject({ metadata: { name: 'default' } });
    expect(page.metadata?.resourceVersion).toMatch(/^\d+$/);
    expect(api.requests.at(-1)!.query).toEqual({ limit: '10' });

    api.setDown(true);
    const err = await client.list('/api/v1/namespaces', {}, AbortSignal.timeout(5000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiStatusError);
    expect(err).toMatchObject({ statusCode: 500, message: 'etcdserver: request timed out' });

    const anonymous = new ApiClient(resolveConnection({ endpoint: api.url }));
    closers.push(() => anonymous.close());
    api.setDown(false);
    await expect(anonymous.list('/api/v1/namespaces', {}, AbortSignal.timeout(5000))).rejects.toMatchObject({ statusCode: 401 });
  });

  it('re-reads a token file after a minute (rotated service-account tokens)', async () => {
    api = await startKubeApi();
    const tokenFile = write('token', 'old-token\n');
    const file = write('config', kubeconfig({ server: api.url }, { 'token-file': tokenFile }));
    const client = new ApiClient(resolveConnection({ kubeconfig: { file } }));
    closers.push(() => client.close());
    const seen: string[] = [];
    const ctx = { setHeaderParam: (k: string, v: string) => { if (k === 'Authorization') seen.push(v); }, setDispatcher: () => {} };
    const auth = () => client.applySecurityAuthentication(ctx as never);
    await auth();
    writeFileSync(tokenFile, 'new-token');
    await auth();
    const now = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(now + 61_000);
    await auth();
    expect(seen).toEqual(['Bearer old-token', 'Bearer old-token', 'Bearer new-token']);
  });
});

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
function makePki(): Record<'caCert' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string> {
  const p = (n: string) => join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.crt'), '-subj', '/CN=test-ca', '-days', '2');
  for (const [name, ext] of [['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'], ['client', 'extendedKeyUsage=clientAuth']] as const) {
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${name}`);
    writeFileSync(p(`${name}.ext`), `${ext}\n`);
    ssl('x509', '-req', '-in', p(`${name}.csr`), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p(`${name}.crt`), '-days', '2', '-extfile', p(`${name}.ext`));
  }
  return { caCert: p('ca.crt'), serverCert: p('server.crt'), serverKey: p('server.key'), clientCert: p('client.crt'), clientKey: p('client.key') };
}

/** TLS in front of the (plain http) test API server, requiring a client certificate signed by the CA. */
async function tlsProxy(target: string, pki: ReturnType<typeof makePki>): Promise<{ url: string; server: HttpsServer; clients: () => string[] }> {
  const { readFileSync } = await import('node:fs');
  const clients: string[] = [];
  const server = createHttpsServer({
    cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), ca: readFileSync(pki.caCert), requestCert: true, rejectUnauthorized: true,
  }, (req, res) => {
    clients.push(String((req.socket as TLSSocket).getPeerCertificate().subject?.CN ?? ''));
    const up = httpRequest(target + req.url, { method: req.method, headers: { ...req.headers, host: new URL(target).host } }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => { server.closeAllConnections(); server.close(r); }));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, server, clients: () => clients };
}

describe.skipIf(!hasOpenssl)('TLS: CA and client certificate, lists and client-node watches', () => {
  it('syncs and watches through endpoint + tls', async () => {
    api = await startKubeApi({ token: null });
    api.add(namespace('shop'));
    api.add(service('shop', 'web', { clusterIP: '10.96.10.1' }));
    api.add(endpointSlice('shop', 'web', ['10.244.1.1']));
    const pki = makePki();
    const proxy = await tlsProxy(api.url, pki);
    const sink = new RecordingSink();
    const src: SourceHandle = startApiSource({ endpoint: proxy.url, tls: { cert: pki.clientCert, key: pki.clientKey, ca: pki.caCert }, watchPods: false, backoff: { initialMs: 50, maxMs: 200 } },
      sink, { log: memoryLogger(), metrics: new Metrics() });
    closers.push(() => src.stop());
    await src.synced;
    expect(sink.keys('Service')).toEqual(['shop/web']);
    // The watch goes through the same TLS settings (client-node's Watch, our dispatcher).
    for (let i = 0; api.watchCount < 3 && i < 100; i++) await new Promise((r) => setTimeout(r, 20));
    api.add(service('shop', 'api', { clusterIP: '10.96.10.2' }));
    for (let i = 0; !sink.services.has('shop/api') && i < 100; i++) await new Promise((r) => setTimeout(r, 20));
    expect(sink.services.has('shop/api')).toBe(true);
    expect(new Set(proxy.clients())).toEqual(new Set(['client']));
  });

  it('lists over https with the CA and the client certificate, on one kept-alive connection', async () => {
    api = await startKubeApi({ token: null });
    api.add(namespace('shop'));
    const pki = makePki();
    const proxy = await tlsProxy(api.url, pki);
    let connections = 0;
    proxy.server.on('secureConnection', () => connections++);
    const client = new ApiClient(resolveConnection({ endpoint: proxy.url, tls: { cert: pki.clientCert, key: pki.clientKey, ca: pki.caCert } }));
    closers.push(() => client.close());
    for (let i = 0; i < 2; i++) {
      const page = await client.list('/api/v1/namespaces', { limit: 10 }, AbortSignal.timeout(5000));
      expect([...page.items].map((n) => (n as { metadata: { name: string } }).metadata.name)).toEqual(['shop']);
    }
    expect(proxy.clients()).toEqual(['client', 'client']);
    expect(connections).toBe(1);
    // Without the client certificate the server refuses the handshake.
    const anonymous = new ApiClient(resolveConnection({ kubeconfig: { file: write('anon', kubeconfig({ server: proxy.url, 'certificate-authority': pki.caCert }, {})) } }));
    closers.push(() => anonymous.close());
    await expect(anonymous.list('/api/v1/namespaces', {}, AbortSignal.timeout(5000))).rejects.toBeInstanceOf(Error);
    expect(proxy.clients()).toHaveLength(2);
  });

  it('refuses the server without its CA, unless insecure-skip-tls-verify', async () => {
    api = await startKubeApi({ token: null });
    const pki = makePki();
    const proxy = await tlsProxy(api.url, pki);
    const strict = new ApiClient(resolveConnection({ kubeconfig: { file: write('strict', kubeconfig({ server: proxy.url }, { 'client-certificate': pki.clientCert, 'client-key': pki.clientKey })) } }));
    closers.push(() => strict.close());
    const err = await strict.list('/api/v1/namespaces', {}, AbortSignal.timeout(5000)).catch((e: unknown) => e) as Error & { cause?: { code?: string } };
    expect(err.cause?.code ?? (err as { code?: string }).code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/);
    const insecure = new ApiClient(resolveConnection({ kubeconfig: { file: write('insecure', kubeconfig({ server: proxy.url, 'insecure-skip-tls-verify': true }, { 'client-certificate': pki.clientCert, 'client-key': pki.clientKey })) } }));
    closers.push(() => insecure.close());
    expect([...(await insecure.list('/api/v1/namespaces', {}, AbortSignal.timeout(5000))).items]).toEqual([]);
  });
});

describe('KubeConfig fallback', () => {
  it('gets its token from an exec credential plugin through client-node\'s KubeConfig', async () => {
    api = await startKubeApi();
    api.add(namespace('default'));
    const credential = { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'test-token' } };
    const file = write('config', kubeconfig({ server: api.url, 'insecure-skip-tls-verify': true }, {
      exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: ['-e', `console.log(${JSON.stringify(JSON.stringify(credential))})`] },
    }));
    const sink = new RecordingSink();
    const log = memoryLogger();
    const src = startApiSource({ kubeconfig: { file }, watchPods: false, backoff: { initialMs: 50, maxMs: 200 } }, sink, { log, metrics: new Metrics() });
    closers.push(() => src.stop());
    await src.synced;
    expect(log.lines.filter((l) => !l.startsWith('[DEBUG]'))).toEqual([`[INFO] ${file}, context ctx needs an exec credential plugin: credentials come from client-node's KubeConfig`]);
    expect(sink.keys('Namespace')).toEqual(['default']);
    for (let i = 0; api.watchCount < 3 && i < 100; i++) await new Promise((r) => setTimeout(r, 20));
    expect(api.watchCount).toBe(3);
  });
});
