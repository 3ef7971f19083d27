// The API source's HTTP client: GET requests over node:https (node:http for http:// endpoints such as
// kubectl proxy), one keep-alive Agent per ApiClient carrying the TLS settings.
//
// Why not undici, which client-node's Watch fetches with: loading npm undici cost the server 5-14 MiB
// of steady RSS, 3.3 MiB of V8 heap, ~24 MiB of startup peak and ~0.1 s (docs/performance.md, "Loading
// less of client-node"), and all the API source ever sends is a GET with a few headers. So our lists use this directly, and client-node's
// watch.js gets `fetch` from this class too: client-node.ts resolves watch.js's `import { fetch } from
// 'undici'` to a stub module that hands a request whose dispatcher is a Transport to `Transport.fetch`,
// which implements exactly what watch.js uses (method GET, headers, dispatcher, signal; status,
// statusText and a web ReadableStream body). Any other dispatcher — client-node's KubeConfig sets an
// npm undici one for exec plugins, auth providers and proxies — goes to the real undici fetch, loaded
// only then (`undiciModule()`).
import { createRequire } from 'node:module';
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';

export interface TlsSettings {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** false only for insecure-skip-tls-verify; unset, Node's default (NODE_TLS_REJECT_UNAUTHORIZED) applies. */
  rejectUnauthorized?: false;
  servername?: string;
}

/** The options watch.js passes to fetch; anything else (a body, another method) is refused. */
export interface WatchFetchInit {
  method?: string;
  headers?: Record<string, string>;
  dispatcher?: unknown;
  signal?: AbortSignal | null;
  [other: string]: unknown;
}

/** What watch.js reads of a fetch Response. */
export interface WatchFetchResponse {
  status: number;
  statusText: string;
  body: ReadableStream<Uint8Array>;
}

export type FetchLike = (input: string | URL, init?: WatchFetchInit) => Promise<unknown>;

const watchFetchKeys = new Set(['method', 'headers', 'dispatcher', 'signal']);

/** What aborting with this signal rejects with, as fetch does: its reason (an AbortError DOMException by default). */
function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

export interface TransportOptions {
  /** How long an idle pooled connection is kept (undici's keepAliveTimeout default, 4 s). Tests shorten it. */
  idleMs?: number;
  /** How long a new connection may take to connect and finish its TLS handshake (undici's default, 10 s). */
  connectTimeoutMs?: number;
}

/**
 * One connection pool to one API server. `get()` for our lists, `fetch()` for client-node's Watch (it
 * is the "dispatcher" ApiClient sets on every request context).
 */
export class Transport {
  readonly agent: HttpAgent;
  private readonly secure: boolean;
  private readonly connectTimeoutMs: number;

  constructor(server: string, tls: TlsSettings, opts: TransportOptions = {}) {
    this.secure = new URL(server).protocol === 'https:';
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    // Keep-alive probes after 30 s of silence, as client-go and client-node's KubeConfig (quiet watches
    // on a dead connection are found by the probes and Watch's own 30 s inactivity timeout). `timeout`
    // closes pooled connections idle that long; a request in progress only gets a 'timeout' event,
    // which nobody acts on.
    const agentOpts = { keepAlive: true, keepAliveMsecs: 30_000, timeout: opts.idleMs ?? 4_000 };
    this.agent = this.secure ? new HttpsAgent({ ...agentOpts, ...tls }) : new HttpAgent(agentOpts);
  }

  /**
   * GET a URL on this server. Resolves with the response once its headers are in (any status); the
   * body is the caller's to read. Aborting the signal destroys the request — and the response, if it
   * is not complete — with the signal's reason; a response whose connection fails mid-body errors
   * (ECONNRESET, "aborted").
   */
  get(url: URL, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortReason(signal));
        return;
      }
      if ((url.protocol === 'https:') !== this.secure) {
        reject(new Error(`${url.protocol} request through a transport for ${this.secure ? 'https' : 'http'}`));
        return;
      }
      let res: IncomingMessage | undefined;
      const onAbort = () => {
        const err = abortReason(signal!);
        if (res && !res.complete) res.destroy(err as Error);
        req.destroy(err as Error);
      };
      const request = this.secure ? httpsRequest : httpRequest;
      const req = request(url, { method: 'GET', headers, agent: this.agent }, (r) => {
        res = r;
        // Errors reach whoever reads the body; this only keeps one that fires before they listen
        // (an abort right after the headers) from being an uncaught exception.
        r.on('error', () => {});
        r.once('close', () => signal?.removeEventListener('abort', onAbort));
        resolve(r);
      });
      // Socket errors are reported on the request even after the response started; before it, they
      // fail the request (after, the response errors too and the rejection is a no-op).
      req.on('error', (err) => {
        if (!res) signal?.removeEventListener('abort', onAbort);
        reject(err);
      });
      // A new connection that neither connects nor finishes its handshake in time fails the request
      // (Node has no connect timeout of its own; a blackholed API server would otherwise hold a list
      // until its 60 s timeout). Pooled connections are already connected.
      req.once('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => {
          const err = Object.assign(new Error(`connecting to ${url.host} timed out after ${this.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' });
          req.destroy(err);
        }, this.connectTimeoutMs);
        socket.once(this.secure ? 'secureConnect' : 'connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      req.end();
    });
  }

  /**
   * fetch, as much of it as client-node's watch.js uses (client-node.test.ts pins that): a GET with
   * headers and a signal; the response's status, statusText and body as a web ReadableStream. Aborting
   * rejects with the signal's reason before the headers, and errors the body after them, as fetch does.
   */
  async fetch(input: string | URL, init: WatchFetchInit = {}): Promise<WatchFetchResponse> {
    const extra = Object.keys(init).filter((k) => !watchFetchKeys.has(k) && init[k] !== undefined);
    if ((init.method ?? 'GET') !== 'GET' || extra.length > 0) {
      throw new Error(`clusterdns: fetch(${init.method ?? 'GET'}${extra.length ? `, ${extra.join(', ')}` : ''}) through the client-node undici stub (plugins/kubernetes/transport.ts), which does only what watch.js needs; it no longer fits this client-node`);
    }
    const res = await this.get(new URL(input), init.headers ?? {}, init.signal ?? undefined);
    return { status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', body: Readable.toWeb(res) as ReadableStream<Uint8Array> };
  }

  /** Close every connection, idle or in use. */
  destroy(): void {
    this.agent.destroy();
  }
}

/**
 * Read a response body into one buffer. A body over 4 KiB gets an ArrayBuffer of its own (Buffer.concat
 * pools only small sizes), which the list reader may free at once (list-page.ts checks). Rejects when
 * the connection fails or the request is aborted mid-body.
 */
export async function readBytes(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Read a response body as text (UTF-8). */
export async function readText(res: IncomingMessage): Promise<string> {
  return (await readBytes(res)).toString('utf8');
}

/** What ApiClient uses of npm undici on the KubeConfig path (and when the stub could not be installed). */
export interface UndiciModule {
  fetch(input: string | URL, init: WatchFetchInit): Promise<{ status: number; text(): Promise<string>; arrayBuffer(): Promise<ArrayBuffer>; headers: IncomingHttpHeaders | unknown }>;
  Agent: new (opts: { connect: Record<string, unknown> }) => { destroy(): Promise<void> };
}

let undici: Promise<UndiciModule> | undefined;

/**
 * npm undici as client-node resolves it (the instance its KubeConfig makes dispatchers with): loaded on
 * first use only. It is client-node's dependency, not ours, so nothing imports it by name.
 */
export function undiciModule(): Promise<UndiciModule> {
  undici ??= Promise.resolve().then(() => createRequire(import.meta.resolve('@kubernetes/client-node/dist/watch.js'))('undici') as UndiciModule);
  return undici;
}

/**
 * The fetch client-node's undici imports get: requests whose dispatcher is a Transport go through it,
 * anything else (client-node's KubeConfig dispatchers, none at all) through npm undici's fetch.
 */
export const dispatchingFetch: FetchLike = (input, init) => {
  const dispatcher = init?.dispatcher;
  if (dispatcher instanceof Transport) return dispatcher.fetch(input, init);
  return undiciModule().then((u) => u.fetch(input, init ?? {}));
};
