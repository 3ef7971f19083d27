// The connection to the Kubernetes API: where the server is and how to authenticate, resolved once at
// start from `endpoint` + `tls`, a kubeconfig file, or the in-cluster service account; and the paged
// list requests the API source makes with it.
//
// Why not client-node's KubeConfig and generated clients: `dist/config.js` loads every auth provider
// (openid-client, jose, jsonpath-plus, socks/proxy agents) and the generated API index with all of its
// models; CoreV1Api/DiscoveryV1Api bring the models too and turn every listed object into class
// instances with Dates. KubeConfig alone adds ~43 MiB of RSS, ~17 MiB of heap and ~0.5 s of startup to
// the Watch and ListWatch we keep (docs/performance.md). What DNS needs is a bearer token, a CA and
// maybe a client certificate.
// A kubeconfig whose user needs an exec plugin or an auth provider, or whose cluster has a proxy-url,
// still goes through KubeConfig, loaded only then.
//
// One ApiClient serves both client-node's Watch (which asks its config for getCurrentCluster() and
// applySecurityAuthentication(ctx), nothing else) and our list requests, so both use the same
// credentials and one connection pool: a Transport (transport.ts, node:https), which client-node.ts
// also makes Watch fetch through instead of npm undici.
import { readFileSync, statSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, resolve } from 'node:path';
import { load as loadYaml } from 'js-yaml';
import type { KubeConfig } from '@kubernetes/client-node/dist/config.js';
// Type only: loading http.js outside client-node.ts's hook would load npm undici (its generated fetch
// library imports it).
import type { RequestContext } from '@kubernetes/client-node/dist/gen/http/http.js';
import { undiciStubbed } from './client-node.ts';
import { parseListPage, type ListItems } from './list-page.ts';
import { readBytes, readText, Transport, undiciModule, type TransportOptions } from './transport.ts';

/** What applySecurityAuthentication sets on a request: Watch passes client-node's RequestContext, list() a ListContext. */
export type AuthContext = Pick<RequestContext, 'setHeaderParam' | 'setDispatcher'>;

/** The request context of a list: headers and the dispatcher (a Transport, or KubeConfig's npm undici one). */
class ListContext implements AuthContext {
  readonly headers: Record<string, string> = {};
  dispatcher: unknown;

  setHeaderParam(key: string, value: string): void {
    this.headers[key] = value;
  }

  setDispatcher(dispatcher: unknown): void {
    this.dispatcher = dispatcher;
  }
}

export interface ApiConnectionConfig {
  /** API server URL (CoreDNS `endpoint`). http:// URLs (kubectl proxy) are allowed. */
  endpoint?: string;
  /** Client certificate, key and CA files for `endpoint` (CoreDNS `tls CERT KEY CACERT`). */
  tls?: { cert: string; key: string; ca: string };
  /** A kubeconfig file and optional context (CoreDNS `kubeconfig KUBECONFIG [CONTEXT]`). */
  kubeconfig?: { file: string; context?: string };
}

/** Where the API server is and how to talk to it, resolved from the configuration. */
export interface ApiConnection {
  /** Base URL, no trailing slash. */
  server: string;
  /** Where the settings came from, for log lines: "FILE, context C", "endpoint URL", "in-cluster service account". */
  origin: string;
  tls: {
    ca?: Buffer;
    cert?: Buffer;
    key?: Buffer;
    /** false only for insecure-skip-tls-verify; unset, Node's default (NODE_TLS_REJECT_UNAUTHORIZED) applies. */
    rejectUnauthorized?: false;
    servername?: string;
  };
  /** A static bearer token. */
  token?: string;
  /** A bearer token file, re-read every minute (service-account tokens are rotated by the kubelet). */
  tokenFile?: string;
  /** username:password for HTTP basic auth. */
  basicAuth?: string;
  /** The kubeconfig user's `as` (Impersonate-User). */
  impersonate?: string;
  /**
   * Set when the credentials need client-node's KubeConfig (exec plugin, auth provider, proxy-url): the
   * merged kubeconfig (paths made absolute), its context, and why.
   */
  kubeConfig?: { raw: RawKubeconfig; context: string; reason: string };
}

const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

/** A kubeconfig as parsed: only the fields read here are typed. */
export interface RawKubeconfig {
  clusters: Array<{ name: string; cluster: Record<string, unknown> }>;
  users: Array<{ name: string; user: Record<string, unknown> }>;
  contexts: Array<{ name: string; context: Record<string, unknown> }>;
  'current-context'?: string;
}

function readConfigFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** A file's content, or decoded base64 data; undefined when neither is set. */
function fileOrData(file: unknown, data: unknown, what: string): Buffer | undefined {
  if (typeof file === 'string' && file !== '') return readConfigFile(file, what);
  if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64');
  return undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function named<T extends { name: string }>(list: unknown, key: string, file: string): T[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new Error(`${file}: ${key} is not a list`);
  return list.map((e: unknown, i) => {
    const o = e as { name?: unknown } | null;
    if (typeof o !== 'object' || o === null || typeof o.name !== 'string' || o.name === '') throw new Error(`${file}: ${key}[${i}].name is missing`);
    return o as T;
  });
}

/** Read one kubeconfig file; relative paths in it are made absolute (relative to the file), as kubectl does. */
export function readKubeconfig(file: string): RawKubeconfig {
  const text = readConfigFile(file, 'kubeconfig').toString('utf8');
  let doc: unknown;
  try {
    doc = loadYaml(text);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === undefined || doc === null) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${file}: not a kubeconfig`);
  const d = doc as Record<string, unknown>;
  const dir = dirname(resolve(file));
  const abs = (o: Record<string, unknown> | undefined, key: string) => {
    const p = o?.[key];
    if (typeof p === 'string' && p !== '' && !isAbsolute(p)) o![key] = resolve(dir, p);
  };
  const clusters = named<{ name: string; cluster: Record<string, unknown> }>(d.clusters, 'clusters', file);
  const users = named<{ name: string; user: Record<string, unknown> }>(d.users, 'users', file);
  const contexts = named<{ name: string; context: Record<string, unknown> }>(d.contexts, 'contexts', file);
  for (const c of clusters) {
    c.cluster ??= {};
    abs(c.cluster, 'certificate-authority');
  }
  for (const u of users) {
    u.user ??= {};
    for (const k of ['client-certificate', 'client-key', 'token-file']) abs(u.user, k);
  }
  for (const c of contexts) c.context ??= {};
  const current = str(d['current-context']);
  return { clusters, users, contexts, ...(current ? { 'current-context': current } : {}) };
}

/** Merge kubeconfig files as kubectl does for $KUBECONFIG: the first file to define a name wins. */
export function mergeKubeconfigs(configs: RawKubeconfig[]): RawKubeconfig {
  const out: RawKubeconfig = { clusters: [], users: [], contexts: [] };
  for (const c of configs) {
    for (const key of ['clusters', 'users', 'contexts'] as const) {
      const list = out[key] as Array<{ name: string }>;
      for (const e of c[key]) if (!list.some((x) => x.name === e.name)) list.push(e);
    }
    if (out['current-context'] === undefined && c['current-context'] !== undefined) out['current-context'] = c['current-context'];
  }
  return out;
}

function fromEndpoint(endpoint: string, tls: ApiConnectionConfig['tls']): ApiConnection {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new Error(`invalid endpoint "${endpoint}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`invalid endpoint "${endpoint}": not http or https`);
  return {
    server: endpoint.replace(/\/+$/, ''),
    origin: `endpoint ${endpoint}`,
    tls: tls ? { ca: readConfigFile(tls.ca, 'CA file'), cert: readConfigFile(tls.cert, 'certificate file'), key: readConfigFile(tls.key, 'key file') } : {},
  };
}

function inCluster(host: string, port: string, dir: string): ApiConnection {
  // As client-node's loadFromCluster: plain http only on the ports kubectl proxy and friends use.
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  const tokenFile = `${dir}/token`;
  readConfigFile(tokenFile, 'service account token'); // fail at start, not on every retry
  return {
    server: `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    origin: 'in-cluster service account',
    tls: { ca: readConfigFile(`${dir}/ca.crt`, 'service account CA') },
    tokenFile,
  };
}

function fromKubeconfig(raw: RawKubeconfig, where: string, context?: string): ApiConnection {
  const ctxName = context ?? raw['current-context'];
  if (!ctxName) throw new Error(`${where} names no current context`);
  const ctx = raw.contexts.find((c) => c.name === ctxName);
  if (!ctx) throw new Error(`context "${ctxName}" not found in ${where}`);
  const clusterName = str(ctx.context.cluster);
  const cluster = raw.clusters.find((c) => c.name === clusterName)?.cluster;
  if (!cluster) throw new Error(`cluster "${clusterName ?? ''}" of context "${ctxName}" not found in ${where}`);
  const server = str(cluster.server);
  if (!server) throw new Error(`cluster "${clusterName}" in ${where} has no server`);
  const userName = str(ctx.context.user);
  const user = userName === undefined ? {} : raw.users.find((u) => u.name === userName)?.user;
  if (!user) throw new Error(`user "${userName}" of context "${ctxName}" not found in ${where}`);
  const origin = `${where}, context ${ctxName}`;
  const needs = user.exec ? 'an exec credential plugin' : user['auth-provider'] ? 'an auth provider' : cluster['proxy-url'] ? 'a proxy-url' : undefined;
  const conn: ApiConnection = { server: server.replace(/\/+$/, ''), origin, tls: {} };
  if (needs) {
    conn.kubeConfig = { raw, context: ctxName, reason: needs };
    return conn;
  }
  const ca = fileOrData(cluster['certificate-authority'], cluster['certificate-authority-data'], 'certificate-authority');
  const cert = fileOrData(user['client-certificate'], user['client-certificate-data'], 'client-certificate');
  const key = fileOrData(user['client-key'], user['client-key-data'], 'client-key');
  if (!cert !== !key) throw new Error(`user "${userName}" in ${where} has a client ${cert ? 'certificate without a key' : 'key without a certificate'}`);
  if (ca) conn.tls.ca = ca;
  if (cert) conn.tls.cert = cert;
  if (key) conn.tls.key = key;
  if (cluster['insecure-skip-tls-verify'] === true) conn.tls.rejectUnauthorized = false;
  const servername = str(cluster['tls-server-name']);
  if (servername) conn.tls.servername = servername;
  const token = str(user.token);
  const tokenFile = str(user['token-file']);
  if (token) conn.token = token;
  else if (tokenFile) conn.tokenFile = tokenFile;
  const username = str(user.username);
  if (username) conn.basicAuth = `${username}:${typeof user.password === 'string' ? user.password : ''}`;
  const as = str(user.as);
  if (as) conn.impersonate = as;
  return conn;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Resolve the configuration: `endpoint` (+`tls`) when given; else the kubeconfig file (and context);
 * else in-cluster (service-account token, KUBERNETES_SERVICE_HOST/PORT); else $KUBECONFIG (merged as
 * kubectl does) or ~/.kube/config. Throws on a configuration that cannot work (missing file, unknown
 * context, unreadable certificate). Reads files, no network.
 */
export function resolveConnection(cfg: ApiConnectionConfig, opts: { env?: NodeJS.ProcessEnv; serviceAccountDir?: string } = {}): ApiConnection {
  const env = opts.env ?? process.env;
  if (cfg.endpoint) return fromEndpoint(cfg.endpoint, cfg.tls);
  if (cfg.kubeconfig) return fromKubeconfig(readKubeconfig(cfg.kubeconfig.file), cfg.kubeconfig.file, cfg.kubeconfig.context);
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) return inCluster(env.KUBERNETES_SERVICE_HOST, env.KUBERNETES_SERVICE_PORT, opts.serviceAccountDir ?? serviceAccountDir);
  const files = (env.KUBECONFIG ?? '').split(delimiter).filter((f) => f !== '');
  if (files.length > 0) return fromKubeconfig(mergeKubeconfigs(files.map(readKubeconfig)), `$KUBECONFIG (${files.join(delimiter)})`);
  const home = env.HOME || homedir();
  const file = `${home}/.kube/config`;
  if (home && isFile(file)) return fromKubeconfig(readKubeconfig(file), file);
  throw new Error('no Kubernetes API to connect to: no endpoint or kubeconfig configured, not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset), no $KUBECONFIG or ~/.kube/config');
}

/** A non-2xx answer to a list request. `statusCode` is what client-node's ListWatch looks for (410). */
export class ApiStatusError extends Error {
  readonly statusCode: number;

  constructor(statusCode: number, body: string) {
    let message = body.slice(0, 200);
    try {
      const status = JSON.parse(body) as { message?: unknown };
      if (typeof status?.message === 'string') message = status.message;
    } catch { /* not a Status object: keep the text */ }
    super(message);
    this.name = 'ApiStatusError';
    this.statusCode = statusCode;
  }
}

/** The fields of a list answer the source reads; the items are parsed one by one as they are read. */
export interface ListPage {
  metadata?: { resourceVersion?: string; continue?: string };
  items: ListItems;
}

const tokenRereadMs = 60_000;
const userAgent = 'clusterdns';

/**
 * Talks to one API server: list requests here, watch requests through client-node's Watch, which is
 * handed this object in place of a KubeConfig (it calls only getCurrentCluster() and
 * applySecurityAuthentication()).
 */
export class ApiClient {
  readonly server: string;
  readonly origin: string;
  private readonly conn: ApiConnection;
  private readonly transport: Transport;
  /** Only where client-node's Watch could not be given the undici stub (client-node.ts): same settings, npm undici. */
  private undiciAgent: Promise<{ destroy(): Promise<void> }> | undefined;
  private token: string | undefined;
  private tokenReadAt = 0;
  private kubeConfig: Promise<KubeConfig> | undefined;

  constructor(conn: ApiConnection, opts: TransportOptions = {}) {
    this.conn = conn;
    this.server = conn.server;
    this.origin = conn.origin;
    this.token = conn.token;
    this.transport = new Transport(conn.server, conn.tls, opts);
  }

  /** For client-node's Watch. */
  getCurrentCluster(): { name: string; server: string; skipTLSVerify: boolean } {
    return { name: 'clusterdns', server: this.server, skipTLSVerify: this.conn.tls.rejectUnauthorized === false };
  }

  /** Authenticate one request (list or watch): headers, and the dispatcher that carries the TLS settings. */
  async applySecurityAuthentication(ctx: AuthContext): Promise<void> {
    ctx.setHeaderParam('User-Agent', userAgent);
    if (this.conn.kubeConfig) {
      // KubeConfig sets its own dispatcher (npm undici), or none: the stub's fetch hands those to npm undici.
      await (await this.loadKubeConfig()).applySecurityAuthentication(ctx as RequestContext);
      return;
    }
    ctx.setDispatcher((undiciStubbed ? this.transport : await this.loadUndiciAgent()) as never);
    const token = this.bearerToken();
    if (token) ctx.setHeaderParam('Authorization', `Bearer ${token}`);
    else if (this.conn.basicAuth) ctx.setHeaderParam('Authorization', `Basic ${Buffer.from(this.conn.basicAuth).toString('base64')}`);
    if (this.conn.impersonate) ctx.setHeaderParam('Impersonate-User', this.conn.impersonate);
  }

  /**
   * One page of a list (GET path?query): its metadata parsed, its items left as bytes to parse one by
   * one (list-page.ts; the caller release()s them). Throws ApiStatusError on a non-200 answer.
   */
  async list(path: string, query: Record<string, string | number | undefined>, signal: AbortSignal): Promise<ListPage> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    const ctx = new ListContext();
    await this.applySecurityAuthentication(ctx);
    const headers = { ...ctx.headers, accept: 'application/json' };
    let status: number;
    let bytes: Uint8Array | undefined;
    let error = '';
    if (ctx.dispatcher instanceof Transport) {
      const res = await ctx.dispatcher.get(url, headers, signal);
      status = res.statusCode ?? 0;
      if (status === 200) bytes = await readBytes(res);
      else error = await readText(res).catch(() => '');
    } else {
      // KubeConfig's npm undici dispatcher (exec plugins, auth providers, proxies), or none.
      const res = await (await undiciModule()).fetch(url, { method: 'GET', headers, dispatcher: ctx.dispatcher, signal });
      status = res.status;
      if (status === 200) bytes = new Uint8Array(await res.arrayBuffer());
      else error = await res.text().catch(() => '');
    }
    if (status !== 200 || !bytes) throw new ApiStatusError(status, error);
    // The page's bytes are ours alone: list-page.ts parses items one by one and frees them at once.
    const { fields, items } = parseListPage(bytes, { owned: true });
    return { metadata: fields.metadata as ListPage['metadata'], items };
  }

  /** Close every connection (watches in progress included). */
  async close(): Promise<void> {
    this.transport.destroy();
    if (this.undiciAgent) await (await this.undiciAgent).destroy().catch(() => {});
  }

  private loadUndiciAgent(): Promise<{ destroy(): Promise<void> }> {
    // The options client-node's KubeConfig gives its undici Agent (30 s keep-alive probes, as client-go).
    this.undiciAgent ??= undiciModule().then((u) => new u.Agent({ connect: { ...this.conn.tls, keepAlive: true, keepAliveInitialDelay: 30_000 } }));
    return this.undiciAgent;
  }

  private bearerToken(): string | undefined {
    const file = this.conn.tokenFile;
    if (file && (this.token === undefined || Date.now() - this.tokenReadAt > tokenRereadMs)) {
      // Read errors propagate: the request fails, is logged, and retried with backoff.
      this.token = readFileSync(file, 'utf8').trim();
      this.tokenReadAt = Date.now();
    }
    return this.token;
  }

  private loadKubeConfig(): Promise<KubeConfig> {
    const spec = this.conn.kubeConfig!;
    this.kubeConfig ??= import('@kubernetes/client-node/dist/config.js').then(({ KubeConfig }) => {
      const kc = new KubeConfig();
      kc.loadFromString(JSON.stringify(spec.raw));
      kc.setCurrentContext(spec.context);
      return kc;
    });
    return this.kubeConfig;
  }
}
