// The node:http transport under ApiClient's lists and client-node's Watch (through the undici stub):
// statuses, aborts, connection failures, keep-alive, and a watch's events and ends. Raw servers on
// 127.0.0.1, so each case controls the bytes and timing exactly.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient, ApiStatusError, type ApiConnection } from './api-client.ts';
import { undiciStubURL, Watch } from './client-node.ts';
import { errorText } from './source-api.ts';
import { dispatchingFetch, Transport } from './transport.ts';

const closers: Array<() => unknown> = [];

afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => unknown, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

interface TestServer {
  url: string;
  /** Connections accepted so far. */
  connections: number;
  /** Connections open now. */
  open: Set<Socket>;
  requests: IncomingMessage[];
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const t: TestServer = { url: '', connections: 0, open: new Set(), requests: [] };
  const server: Server = createServer((req, res) => {
    t.requests.push(req);
    handler(req, res);
  });
  server.on('connection', (s: Socket) => {
    t.connections++;
    t.open.add(s);
    s.on('close', () => t.open.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  closers.push(() => new Promise((r) => { server.closeAllConnections(); server.close(r); }));
  return t;
}

function client(url: string, opts: { idleMs?: number } = {}): ApiClient {
  const conn: ApiConnection = { server: url, origin: 'test', tls: {}, token: 'secret' };
  const c = new ApiClient(conn, opts);
  closers.push(() => c.close());
  return c;
}

const list = (c: ApiClient, signal: AbortSignal = AbortSignal.timeout(5000)) => c.list('/api/v1/services', { limit: 2 }, signal);

describe('lists', () => {
  it('GETs with the credentials and parses the answer; pooled connections are reused, then closed when idle', async () => {
    const srv = await serve((_req, res) => res.end('{"metadata":{"resourceVersion":"7"},"items":[{"a":1}]}'));
    const c = client(srv.url, { idleMs: 150 });
    const first = await list(c);
    expect(first.metadata).toEqual({ resourceVersion: '7' });
    expect([...first.items]).toEqual([{ a: 1 }]);
    expect([...(await list(c)).items]).toEqual([{ a: 1 }]);
    const req = srv.requests[0]!;
    expect(req.url).toBe('/api/v1/services?limit=2');
    expect(req.headers).toMatchObject({ authorization: 'Bearer secret', 'user-agent': 'clusterdns', accept: 'application/json' });
    expect(srv.connections).toBe(1);
    await waitFor(() => srv.open.size === 0, 'the idle connection to close');
  });

  it('turns a non-200 answer into ApiStatusError: a Status object\'s message, else the body text', async () => {
    const srv = await serve((req, res) => {
      if (req.url!.includes('limit')) {
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Status', status: 'Failure', message: 'services is forbidden: User "x" cannot list', code: 403 }));
      } else {
        res.writeHead(502);
        res.end('upstream connect error');
      }
    });
    const c = client(srv.url);
    await expect(list(c)).rejects.toSatisfy((e) => e instanceof ApiStatusError && e.statusCode === 403 && e.message === 'services is forbidden: User "x" cannot list');
    await expect(c.list('/api/v1/services', {}, AbortSignal.timeout(5000))).rejects.toMatchObject({ name: 'ApiStatusError', statusCode: 502, message: 'upstream connect error' });
  });

  it('aborts before the answer and in the middle of the body, closing the connection', async () => {
    const srv = await serve((req, res) => {
      if (req.url!.includes('limit')) return; // never answers
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"items":['); // and stalls
    });
    const c = client(srv.url);
    const early = new AbortController();
    const p1 = list(c, early.signal);
    await waitFor(() => srv.requests.length === 1, 'the request');
    early.abort();
    await expect(p1).rejects.toMatchObject({ name: 'AbortError' });
    await waitFor(() => srv.open.size === 0, 'the connection to close');

    const mid = new AbortController();
    const p2 = c.list('/api/v1/services', {}, mid.signal);
    await waitFor(() => srv.requests.length === 2, 'the second request');
    await sleep(50);
    mid.abort();
    await expect(p2).rejects.toMatchObject({ name: 'AbortError' });
    await waitFor(() => srv.open.size === 0, 'the connection to close');

    // A timeout rejects with its own reason, as fetch does; an aborted signal fails at once.
    await expect(list(c, AbortSignal.timeout(50))).rejects.toMatchObject({ name: 'TimeoutError' });
    const requests = srv.requests.length;
    await expect(list(c, AbortSignal.abort())).rejects.toMatchObject({ name: 'AbortError' });
    expect(srv.requests.length).toBe(requests);
  });

  it('fails on a refused connection and on one cut in the middle of the body', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"items":[', () => res.socket?.destroy());
    });
    const c = client(srv.url);
    await expect(list(c)).rejects.toMatchObject({ code: 'ECONNRESET' });
    const refused = await serve(() => {});
    const port = new URL(refused.url).port;
    for (const close of closers.splice(-1)) await close();
    await expect(list(client(`http://127.0.0.1:${port}`))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('gives up on a connection whose TLS handshake never finishes', async () => {
    // Accepts TCP and says nothing: the handshake hangs, as with a half-dead API server.
    const sockets = new Set<Socket>();
    let closed = 0;
    const silent = createTcpServer((s) => {
      sockets.add(s);
      s.resume();
      s.on('close', () => closed++);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => { for (const s of sockets) s.destroy(); silent.close(r); }));
    const url = `https://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    const c = new ApiClient({ server: url, origin: 'test', tls: {} }, { connectTimeoutMs: 100 });
    closers.push(() => c.close());
    const err = await list(c).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ETIMEDOUT', message: `connecting to 127.0.0.1:${new URL(url).port} timed out after 100 ms` });
    await waitFor(() => sockets.size === 1 && closed === 1, 'the client to hang up');
  });
});

type Event = [string, unknown];

function watch(c: ApiClient, path = '/api/v1/services'): { events: Event[]; done: Promise<unknown>; controller: Promise<AbortController> } {
  const events: Event[] = [];
  let onDone!: (err: unknown) => void;
  const done = new Promise((r) => { onDone = r; });
  const controller = new Watch(c as never).watch(path, { resourceVersion: '5' }, (phase, obj) => events.push([phase, obj]), (err) => onDone(err));
  return { events, done, controller };
}

const line = (type: string, name: string) => `${JSON.stringify({ type, object: { metadata: { name, resourceVersion: '6' } } })}\n`;

describe('client-node Watch over the transport', () => {
  it('delivers events and calls done when the server ends the stream', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(line('ADDED', 'a'));
      setTimeout(() => res.end(line('DELETED', 'a') + line('BOOKMARK', '')), 50);
    });
    const w = watch(client(srv.url));
    expect(await w.done).toBeNull();
    expect(w.events.map(([phase, obj]) => `${phase} ${(obj as { metadata: { name: string } }).metadata.name}`)).toEqual(['ADDED a', 'DELETED a', 'BOOKMARK ']);
    const req = srv.requests[0]!;
    expect(new URL(req.url!, srv.url).searchParams.get('watch')).toBe('true');
    expect(req.headers).toMatchObject({ authorization: 'Bearer secret', 'user-agent': 'clusterdns' });
  });

  it('abort: done gets an AbortError and the connection closes', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(line('ADDED', 'a'));
    });
    const w = watch(client(srv.url));
    await waitFor(() => w.events.length === 1, 'the first event');
    (await w.controller).abort();
    expect(await w.done).toMatchObject({ name: 'AbortError' });
    await waitFor(() => srv.open.size === 0, 'the connection to close');
  });

  it('a cut connection and a non-200 answer end the watch with an error', async () => {
    const srv = await serve((req, res) => {
      if (req.url!.startsWith('/denied')) {
        res.writeHead(403);
        res.end('no');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(line('ADDED', 'a'), () => setTimeout(() => res.socket?.destroy(), 20));
    });
    const c = client(srv.url);
    const cut = watch(c);
    const cutErr = await cut.done;
    expect(cutErr).toMatchObject({ code: 'ECONNRESET' });
    expect(errorText(cutErr)).toBe('aborted (ECONNRESET)');
    expect(cut.events).toHaveLength(1);
    const denied = watch(c, '/denied');
    expect(await denied.done).toMatchObject({ statusCode: 403, message: 'Forbidden' });
    await waitFor(() => srv.open.size === 0, 'the connections to close');
  });

  it('close() ends watches in progress; a quiet watch outlives the idle timeout of pooled connections', async () => {
    const srv = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(line('ADDED', 'a'));
      setTimeout(() => res.write(line('MODIFIED', 'a')), 300);
    });
    const c = client(srv.url, { idleMs: 50 });
    const w = watch(c);
    await waitFor(() => w.events.length === 2, 'the event after a quiet spell');
    expect(srv.connections).toBe(1);
    await c.close();
    expect(await w.done).toBeTruthy();
    await waitFor(() => srv.open.size === 0, 'the connection to close');
  });
});

describe('the undici stub\'s fetch', () => {
  it('is what client-node\'s watch.js imports, and refuses more than watch.js asks of it', async () => {
    const stub = await import(undiciStubURL) as { fetch: typeof dispatchingFetch };
    const srv = await serve((_req, res) => res.end('hi'));
    const transport = new Transport(srv.url, {});
    closers.push(() => transport.destroy());
    const res = await stub.fetch(`${srv.url}/x`, { method: 'GET', headers: {}, dispatcher: transport, signal: AbortSignal.timeout(5000) }) as { status: number; statusText: string; body: ReadableStream };
    expect([res.status, res.statusText]).toEqual([200, 'OK']);
    expect(await new Response(res.body).text()).toBe('hi');
    await expect(stub.fetch(srv.url, { method: 'POST', dispatcher: transport })).rejects.toThrow(/no longer fits this client-node/);
    await expect(stub.fetch(srv.url, { dispatcher: transport, body: 'x' })).rejects.toThrow(/fetch\(GET, body\)/);
  });

  it('hands any other dispatcher (client-node\'s KubeConfig ones, none) to npm undici', async () => {
    const srv = await serve((_req, res) => res.end('via undici'));
    const res = await dispatchingFetch(`${srv.url}/x`, { method: 'GET', headers: {}, dispatcher: undefined }) as Response;
    expect(await res.text()).toBe('via undici');
    expect(res.headers.get('content-length')).toBe('10');
  });
});
