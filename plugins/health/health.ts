import net from 'node:net';
import type { Histogram, Counter } from 'prom-client';
import type { Logger } from '../../src/log.ts';
import type { Metrics } from '../../src/metrics.ts';
import type { HttpMux, Route } from '../../src/server/http.ts';
import { formatDuration } from '../errors/duration.ts';
import { loopbackBase } from './address.ts';

/** CoreDNS's slim time buckets: 0.25 ms to 2.5 s, ×10. */
export const HEALTH_BUCKETS = [0.00025, 0.0025, 0.025, 0.25, 2.5];
const CHECK_INTERVAL_MS = 1_000;
const CHECK_TIMEOUT_MS = 3_000;
/** A local round trip slower than this means the process is struggling. */
const SLOW_MS = 1_000;

export interface HealthMetrics {
  duration: Histogram<never>;
  failures: Counter<never>;
}

export function healthMetrics(m: Metrics): HealthMetrics {
  return {
    duration: m.histogram('coredns_health_request_duration_seconds', 'Histogram of the time (in seconds) each request took.', [], HEALTH_BUCKETS),
    failures: m.counter('coredns_health_request_failures_total', 'The number of times the health check failed.'),
  };
}

/** The /health route: the process is up, so it is healthy (also during lameduck). */
export const healthRoute: Route = (_req, res) => {
  // No writeHead: node:http then sends the body's Content-Length (as CoreDNS does) instead of chunking.
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.end('OK');
};

/**
 * One kept-alive HTTP/1.1 connection to our own /health, spoken directly on a socket. The probe runs on
 * the DNS event loop once a second, where node:http's client (ClientRequest, the agent, streams) kept
 * the loop busy for 1-3 ms per probe (its code never gets hot at that rate): queries arriving
 * meanwhile waited (docs/performance.md, "What stalls the loop"). This costs about half as much;
 * the server side is still node:http, as kubelet's probes see it.
 */
export class Probe {
  readonly url: string;
  private readonly host: string;
  private readonly port: number;
  private readonly request: Buffer;
  private sock: net.Socket | undefined;
  private text = '';
  private pending: { resolve: (status: number) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined;

  constructor(url: string) {
    this.url = url;
    const u = new URL(url);
    this.host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = Number(u.port || 80);
    this.request = Buffer.from(`GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: clusterdns-health\r\n\r\n`, 'latin1');
  }

  /** The response's status code; rejects on a connection error, a malformed response or no response within `timeoutMs`. */
  get(timeoutMs: number): Promise<number> {
    if (this.pending) return Promise.reject(new Error('a probe is already in flight'));
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`no response within ${formatDuration(timeoutMs)}`)), timeoutMs);
      this.pending = { resolve, reject, timer };
      this.text = '';
      const sock = this.sock ?? this.connect();
      sock.write(this.request);
    });
  }

  close(): void { this.fail(new Error('probe stopped')); }

  private connect(): net.Socket {
    const sock = net.connect({ host: this.host, port: this.port, noDelay: true });
    sock.setEncoding('latin1');
    // Events of a socket already given up (destroyed by fail() or after `Connection: close`) are
    // not about the probe in flight, which has a socket of its own.
    sock.on('data', (chunk: string) => { if (this.sock === sock) this.onData(chunk); });
    sock.on('error', (e) => { if (this.sock === sock) this.fail(e); });
    sock.on('close', () => { if (this.sock === sock) this.fail(new Error('socket hang up')); });
    this.sock = sock;
    return sock;
  }

  private onData(chunk: string): void {
    if (!this.pending) return;
    this.text += chunk;
    const end = this.text.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.text.slice(0, end);
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
    const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
    const chunked = /\r\ntransfer-encoding:[ \t]*chunked/i.test(head);
    // node:http answers with a length or chunked (after writeHead); anything else is not a response we made.
    if (!status || (!length && !chunked)) { this.fail(new Error(`malformed response: ${JSON.stringify(head.split('\r\n')[0])}`)); return; }
    if (length ? this.text.length < end + 4 + Number(length[1]) : !this.text.endsWith('\r\n0\r\n\r\n')) return;
    const p = this.pending;
    this.pending = undefined;
    clearTimeout(p.timer);
    if (/\r\nconnection:[ \t]*close/i.test(head)) this.drop();
    p.resolve(Number(status[1]));
  }

  /** Gives up the socket: the next probe connects anew, and the old one's events are ignored. */
  private drop(): void {
    const sock = this.sock;
    this.sock = undefined;
    sock?.destroy();
  }

  /** Drops the socket and rejects the probe in flight, if any. */
  private fail(e: Error): void {
    this.drop();
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    p.reject(e);
  }
}

/**
 * Fetches our own /health once a second and records how long it took: a slow local round trip is
 * the earliest sign of an overloaded process. One kept-alive connection (Probe), so probes leave no
 * TIME_WAIT sockets behind.
 */
export class SelfCheck {
  private readonly mux: HttpMux;
  private readonly metrics: HealthMetrics;
  private readonly log: Logger;
  private probe: Probe | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;

  constructor(mux: HttpMux, metrics: HealthMetrics, log: Logger) {
    this.mux = mux;
    this.metrics = metrics;
    this.log = log;
  }

  get url(): string { return `${loopbackBase(this.mux.addr, this.mux.port)}/health`; }

  start(intervalMs = CHECK_INTERVAL_MS): void {
    if (this.timer) return;
    this.timer = setInterval(() => { void this.check(); }, intervalMs);
    this.timer.unref();
  }

  /** One probe; skipped while the previous one is still out. */
  async check(): Promise<void> {
    if (this.inFlight) return;
    this.inFlight = true;
    const url = this.url;
    // The bound port is known only after listen(); a reload keeps the same listener and so the probe.
    if (this.probe?.url !== url) { this.probe?.close(); this.probe = new Probe(url); }
    const start = performance.now();
    try {
      const status = await this.probe.get(CHECK_TIMEOUT_MS);
      if (status !== 200) throw new Error(`status ${status}`);
      const ms = performance.now() - start;
      this.metrics.duration.observe(ms / 1000);
      if (ms > SLOW_MS) this.log.warn(`Local health request to ${JSON.stringify(url)} took more than 1s: ${formatDuration(ms)}`);
    } catch (e) {
      this.metrics.duration.observe((performance.now() - start) / 1000);
      this.metrics.failures.inc();
      this.log.warn(`Local health request to ${JSON.stringify(url)} failed: ${(e as Error).message}`);
    } finally {
      this.inFlight = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.probe?.close();
    this.probe = undefined;
  }
}
