import { afterEach, describe, expect, it, vi } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { Metrics } from '../../src/metrics.ts';
import { HttpMux } from '../../src/server/http.ts';
import { fakeEnv } from '../../test/helpers.ts';
import { loopbackBase } from './address.ts';
import { Probe, SelfCheck, healthMetrics } from './health.ts';
import net from 'node:net';
import { plugin, type HealthConfig } from './index.ts';

function controllers(text: string): Controller[] {
  const cf = parseCorefile(text, { file: 'Corefile', env: {} });
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === 'health').map((d) => new Controller(d, b)));
}
const parse = (directive: string): HealthConfig => plugin.parse(controllers(`. {\n${directive}\n}\n`)[0]!);

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.reverse()) await f();
  cleanup = [];
});

/** A fake env whose log lines carry the plugin prefix the server adds, and whose muxes are closed after the test. */
function env(over: Parameters<typeof fakeEnv>[0] = {}) {
  const f = fakeEnv(over);
  f.env.log = f.log.child('plugin/health');
  cleanup.push(async () => { for (const m of f.muxes.values()) await m.close(); });
  return f;
}

async function get(mux: HttpMux, path: string): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${mux.port}${path}`);
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

describe('health: parse', () => {
  it.each<[string, HealthConfig]>([
    ['health', { addr: ':8080', lameduckMs: 0 }],
    ['health localhost:8091', { addr: 'localhost:8091', lameduckMs: 0 }],
    ['health [::1]:8080', { addr: '[::1]:8080', lameduckMs: 0 }],
    ['health :8080 {\n lameduck 5s\n}', { addr: ':8080', lameduckMs: 5000 }],
    ['health {\n lameduck 1m30s\n}', { addr: ':8080', lameduckMs: 90_000 }],
  ])('%j', (text, want) => {
    expect(parse(text)).toEqual(want);
  });

  it.each([
    ['health :8080 :8081', "plugin/health: Corefile:2 - Error during parsing: Wrong argument count or unexpected line ending after ':8081'"],
    ['health 8080', "plugin/health: Corefile:2 - Error during parsing: invalid address '8080': want [HOST]:PORT"],
    ['health localhost', "plugin/health: Corefile:2 - Error during parsing: invalid address 'localhost': want [HOST]:PORT"],
    ['health :70000', "plugin/health: Corefile:2 - Error during parsing: invalid port in address ':70000'"],
    ['health {\n lameduck\n}', "plugin/health: Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'lameduck'"],
    ['health {\n lameduck 5\n}', "plugin/health: Corefile:3 - Error during parsing: invalid duration '5'"],
    ['health {\n lameduck 0s\n}', "plugin/health: Corefile:3 - Error during parsing: lameduck duration must be positive, got '0s'"],
    ['health {\n lameduck 5s 6s\n}', "plugin/health: Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after '6s'"],
    ['health {\n overloaded\n}', "plugin/health: Corefile:3 - Error during parsing: unknown property 'overloaded'"],
  ])('rejects %j', (text, message) => {
    expect(() => parse(text)).toThrow(message);
  });
});

describe('health: endpoint', () => {
  it('answers 200 OK on /health and nothing else', async () => {
    const f = env();
    plugin.setup({ addr: '127.0.0.1:0', lameduckMs: 0 }, f.env);
    const mux = f.muxes.get('127.0.0.1:0')!;
    await mux.listen();
    expect(await get(mux, '/health')).toEqual({ status: 200, body: 'OK', type: 'text/plain; charset=utf-8' });
    expect((await get(mux, '/health?verbose=1')).status).toBe(200);
    expect((await get(mux, '/ready')).status).toBe(404);
  });

  it('keeps answering OK while draining, and removes its route on final shutdown', async () => {
    const f = env();
    plugin.setup({ addr: '127.0.0.1:0', lameduckMs: 0 }, f.env);
    const mux = f.muxes.get('127.0.0.1:0')!;
    await mux.listen();
    (f.instance as { draining: boolean }).draining = true;
    expect((await get(mux, '/health')).status).toBe(200);
    for (const h of f.startup) await h();
    for (const h of f.finalShutdown) await h();
    expect(mux.routeCount).toBe(0);
    expect((await get(mux, '/health')).status).toBe(404);
  });

  it('probes itself once a second and records the duration', async () => {
    const f = env();
    plugin.setup({ addr: '127.0.0.1:0', lameduckMs: 0 }, f.env);
    await f.muxes.get('127.0.0.1:0')!.listen();
    for (const h of f.startup) await h();
    cleanup.push(async () => { for (const h of f.finalShutdown) await h(); });
    await vi.waitFor(async () => {
      expect(await f.env.metrics.text()).toMatch(/^coredns_health_request_duration_seconds_count 1$/m);
    }, { timeout: 3000, interval: 50 });
    const text = await f.env.metrics.text();
    expect(text).toMatch(/^coredns_health_request_failures_total 0$/m);
    expect(text).toContain('coredns_health_request_duration_seconds_bucket{le="0.00025"}');
    expect(text).toContain('coredns_health_request_duration_seconds_bucket{le="2.5"}');
    expect(f.log.lines).toEqual([]);
  });

  it('counts a failed probe and says why', async () => {
    // A port that was just free: nothing listens there any more.
    const probe = new HttpMux('127.0.0.1:0');
    await probe.listen();
    const port = probe.port;
    await probe.close();
    const metrics = new Metrics();
    const f = env();
    const check = new SelfCheck(new HttpMux(`127.0.0.1:${port}`), healthMetrics(metrics), f.env.log);
    cleanup.push(() => check.stop());
    await check.check();
    const text = await metrics.text();
    expect(text).toMatch(/^coredns_health_request_failures_total 1$/m);
    expect(text).toMatch(/^coredns_health_request_duration_seconds_count 1$/m);
    expect(f.log.lines).toEqual([`[WARNING] plugin/health: Local health request to "http://127.0.0.1:${port}/health" failed: connect ECONNREFUSED 127.0.0.1:${port}`]);
  });

  it('probes loopback when listening on every address', () => {
    expect(loopbackBase(':8080', 0)).toBe('http://127.0.0.1:8080');
    expect(loopbackBase('0.0.0.0:8080', 0)).toBe('http://127.0.0.1:8080');
    expect(loopbackBase('[::]:8080', 0)).toBe('http://[::1]:8080');
    expect(loopbackBase('[::1]:0', 4321)).toBe('http://[::1]:4321');
    expect(loopbackBase('localhost:8091', 0)).toBe('http://localhost:8091');
  });

  it('sets up one route and one probe per address, however many blocks ask', () => {
    const a = env();
    const b = env({ instance: a.instance, http: a.env.http, block: { zones: ['example.org.'], servers: [], index: 1, plugins: [] } });
    plugin.setup({ addr: '127.0.0.1:0', lameduckMs: 0 }, a.env);
    plugin.setup({ addr: '127.0.0.1:0', lameduckMs: 0 }, b.env);
    expect(a.startup.length + b.startup.length).toBe(1);
    expect(a.muxes.get('127.0.0.1:0')!.routeCount).toBe(1);
  });
});

/** A TCP server that answers every request it reads with `reply(n)` (n counts requests on all connections). */
async function rawServer(reply: (n: number, sock: net.Socket) => string | undefined): Promise<{ port: number; connections: () => number }> {
  let n = 0;
  let conns = 0;
  const server = net.createServer((sock) => {
    conns++;
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      while (buf.includes('\r\n\r\n')) {
        buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
        const r = reply(++n, sock);
        if (r !== undefined) sock.write(r);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise<void>((resolve) => { server.close(() => resolve()); for (const c of sockets) c.destroy(); }));
  const sockets = new Set<net.Socket>();
  server.on('connection', (c) => { sockets.add(c); c.on('close', () => sockets.delete(c)); });
  return { port: (server.address() as net.AddressInfo).port, connections: () => conns };
}

describe('health: the probe', () => {
  const probe = (port: number) => {
    const p = new Probe(`http://127.0.0.1:${port}/health`);
    cleanup.push(() => p.close());
    return p;
  };

  it('reads length-delimited and chunked responses on one kept-alive connection', async () => {
    const s = await rawServer((n) => n % 2
      ? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK'
      : 'HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n');
    const p = probe(s.port);
    expect(await p.get(1000)).toBe(200);
    expect(await p.get(1000)).toBe(503);
    expect(await p.get(1000)).toBe(200);
    expect(s.connections()).toBe(1);
  });

  it('sends GET for the path with the Host header', async () => {
    let seen = '';
    const server = net.createServer((sock) => sock.once('data', (d) => { seen = d.toString(); sock.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'); }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as net.AddressInfo).port;
    expect(await probe(port).get(1000)).toBe(200);
    expect(seen.split('\r\n').slice(0, 2)).toEqual(['GET /health HTTP/1.1', `Host: 127.0.0.1:${port}`]);
  });

  it('waits for a response split over several segments', async () => {
    const s = await rawServer((_n, sock) => {
      sock.write('HTTP/1.1 200 OK\r\nContent-');
      setTimeout(() => sock.write('Length: 2\r\n\r\nO'), 20);
      setTimeout(() => sock.write('K'), 40);
      return undefined;
    });
    expect(await probe(s.port).get(1000)).toBe(200);
  });

  it('reconnects after the server closes the connection', async () => {
    const s = await rawServer(() => 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK');
    const p = probe(s.port);
    expect(await p.get(1000)).toBe(200);
    expect(await p.get(1000)).toBe(200);
    expect(s.connections()).toBe(2);
  });

  it('reconnects after the server drops an idle connection', async () => {
    const s = await rawServer((_n, sock) => {
      setTimeout(() => sock.destroy(), 10);
      return 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK';
    });
    const p = probe(s.port);
    expect(await p.get(1000)).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    expect(await p.get(1000)).toBe(200);
    expect(s.connections()).toBe(2);
  });

  it('fails on a hang-up, a malformed response and a timeout, and recovers afterwards', async () => {
    const s = await rawServer((n, sock) => {
      if (n === 1) { sock.destroy(); return undefined; }
      if (n === 2) return 'SSH-2.0-OpenSSH\r\n\r\n';
      if (n === 3) return 'HTTP/1.1 200 OK\r\n\r\n';
      if (n === 4) return undefined;
      return 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK';
    });
    const p = probe(s.port);
    await expect(p.get(1000)).rejects.toThrow('socket hang up');
    await expect(p.get(1000)).rejects.toThrow('malformed response: "SSH-2.0-OpenSSH"');
    await expect(p.get(1000)).rejects.toThrow('malformed response: "HTTP/1.1 200 OK"');
    await expect(p.get(50)).rejects.toThrow('no response within 50ms');
    expect(await p.get(1000)).toBe(200);
  });

  it('refuses a second probe while one is out', async () => {
    const s = await rawServer(() => undefined);
    const p = probe(s.port);
    const first = p.get(1000);
    await expect(p.get(1000)).rejects.toThrow('a probe is already in flight');
    p.close();
    await expect(first).rejects.toThrow('probe stopped');
  });

  it('probes over IPv6 loopback and by host name', async () => {
    for (const addr of ['[::1]:0', 'localhost:0']) {
      const mux = new HttpMux(addr);
      mux.route('/health', (_req, res) => { res.writeHead(200).end('OK'); });
      await mux.listen();
      cleanup.push(() => mux.close());
      const metrics = new Metrics();
      const f = env();
      const check = new SelfCheck(mux, healthMetrics(metrics), f.env.log);
      cleanup.push(() => check.stop());
      await check.check();
      expect(await metrics.text()).toMatch(/^coredns_health_request_failures_total 0$/m);
      expect(f.log.lines).toEqual([]);
    }
  });

  it('answers /health with a length, as CoreDNS does', async () => {
    const f = env();
    plugin.setup({ addr: '127.0.0.1:0', lameduckMs: 0 }, f.env);
    const m = f.muxes.get('127.0.0.1:0')!;
    await m.listen();
    const res = await fetch(`http://127.0.0.1:${m.port}/health`);
    expect(res.headers.get('content-length')).toBe('2');
    expect(await probe(m.port).get(1000)).toBe(200);
  });
});

describe('health: lameduck', () => {
  it('waits on shutdown, logging as CoreDNS does', async () => {
    const f = env();
    plugin.setup({ addr: '127.0.0.1:0', lameduckMs: 60 }, f.env);
    expect(f.shutdown).toHaveLength(1);
    const start = performance.now();
    await f.shutdown[0]!();
    expect(performance.now() - start).toBeGreaterThanOrEqual(55);
    expect(f.log.lines).toEqual(['[INFO] plugin/health: Going into lameduck mode for 60ms']);
  });

  it('waits once, for the longest duration, when several blocks ask', async () => {
    const a = env();
    const b = env({ instance: a.instance, block: { zones: ['example.org.'], servers: [], index: 1, plugins: [] } });
    plugin.setup({ addr: '127.0.0.1:0', lameduckMs: 20 }, a.env);
    plugin.setup({ addr: '127.0.0.2:0', lameduckMs: 5_000 }, b.env);
    expect(a.shutdown).toHaveLength(1);
    expect(b.shutdown).toHaveLength(0);
    vi.useFakeTimers();
    try {
      const done = a.shutdown[0]!();
      await vi.advanceTimersByTimeAsync(4_999);
      let finished = false;
      void Promise.resolve(done).then(() => { finished = true; });
      await vi.advanceTimersByTimeAsync(0);
      expect(finished).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await done;
    } finally {
      vi.useRealTimers();
    }
    expect(a.log.lines).toEqual(['[INFO] plugin/health: Going into lameduck mode for 5s']);
  });

  it('does not wait without lameduck', () => {
    const f = env();
    plugin.setup({ addr: '127.0.0.1:0', lameduckMs: 0 }, f.env);
    expect(f.shutdown).toHaveLength(0);
  });
});
