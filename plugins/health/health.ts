import http from 'node:http';
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
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('OK');
};

function get(url: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: CHECK_TIMEOUT_MS }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no response within ${formatDuration(CHECK_TIMEOUT_MS)}`)));
    req.on('error', reject);
  });
}

/**
 * Fetches our own /health once a second and records how long it took: a slow local round trip is
 * the earliest sign of an overloaded process. One kept-alive connection, so probes leave no
 * TIME_WAIT sockets behind.
 */
export class SelfCheck {
  private readonly mux: HttpMux;
  private readonly metrics: HealthMetrics;
  private readonly log: Logger;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
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
    const start = performance.now();
    try {
      const status = await get(url, this.agent);
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
    this.agent.destroy();
  }
}
