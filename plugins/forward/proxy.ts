// One upstream (CoreDNS's plugin/pkg/proxy Proxy): exchanges over UDP or TCP, a cache of persistent
// TCP connections, and the health-check probe that decides whether the upstream is down.
//
// UDP uses a fresh socket per query, connected to the upstream: the kernel picks a random source port
// each time (together with the random ID that is ~32 bits an off-path spoofer must guess), drops
// datagrams from any other address, and reports ICMP "port unreachable" as ECONNREFUSED at once
// instead of a 2 s timeout. A pool of long-lived UDP sockets would save ~20 µs per query but make
// the source port predictable, which is what Kaminsky-style poisoning needs.
import dgram from 'node:dgram';
import { buildQuery } from '../../src/dns/build.ts';
import { decode } from '../../src/dns/codec.ts';
import { type Msg, Type } from '../../src/dns/types.ts';
import type { Request } from '../../src/request.ts';
import type { UpstreamAddr } from './config.ts';
import { type ForwardMetrics, rcodeLabel } from './metrics.ts';
import { ConnClosedError, TcpConn, TimeoutError } from './tcp.ts';
import { isReplyTo, isResponseTo, outgoing, randomId } from './wire.ts';

export type Transport = 'udp' | 'tcp';

/** Queries in flight on one TCP connection before another is opened (some servers answer serially). */
const maxPipeline = 16;
/** Our EDNS UDP size toward upstreams when the client came over TCP (DNS flag day 2020 value). */
const defaultUdpSize = 1232;
/** Floor between health checks, so `health_check 0` against a refusing port does not spin. */
const minProbeGapMs = 10;

export interface ProxyOptions {
  upstream: UpstreamAddr;
  expireMs: number;
  /** 0: no cap on idle TCP connections kept. */
  maxIdleConns: number;
  healthCheck: { intervalMs: number; timeoutMs: number; recursionDesired: boolean; domain: string; tcp: boolean };
  metrics: ForwardMetrics;
}

export class Proxy {
  /** "10.0.0.1:53": the upstream's name in metrics and logs. */
  readonly addr: string;
  /** Consecutive failed health checks (CoreDNS counts only those, not failed queries). */
  fails = 0;
  private readonly up: UpstreamAddr;
  private readonly opts: ProxyOptions;
  private readonly m: ForwardMetrics;
  private readonly tcpConns: TcpConn[] = [];
  /** Open UDP exchanges, by their finisher (so stop() can end them). */
  private readonly udpOpen = new Set<(err?: Error, buf?: Uint8Array) => void>();
  private hcConn: TcpConn | undefined;
  private probing = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private probeWake: (() => void) | undefined;
  private stopped = false;

  constructor(opts: ProxyOptions) {
    this.opts = opts;
    this.up = opts.upstream;
    this.addr = opts.upstream.addr;
    this.m = opts.metrics;
  }

  /** Down when it failed *more* than `maxFails` health checks in a row; never with maxFails 0. */
  down(maxFails: number): boolean {
    return maxFails !== 0 && this.fails > maxFails;
  }

  /**
   * Send the client's query (with a fresh ID) and wait for the matching reply. Rejects on timeout,
   * transport errors and undecodable replies; stale or spoofed datagrams are ignored meanwhile.
   */
  async exchange(req: Request, proto: Transport, timeoutMs: number): Promise<Msg> {
    const start = performance.now();
    const want = { name: req.name, type: req.qtype, class: req.qclass };
    let buf: Uint8Array;
    if (proto === 'udp') {
      const id = randomId();
      const bytes = outgoing(req.raw, req.query, id, req.proto === 'udp' ? req.size : defaultUdpSize);
      buf = await this.udp(bytes, (b) => isReplyTo(b, id, want), timeoutMs, true);
    } else {
      buf = await this.tcp(req, want, start + timeoutMs, false);
    }
    const msg = decode(buf);
    this.m.requestDuration.observe({ proxy_name: 'forward', to: this.addr, rcode: rcodeLabel(msg.rcode) }, (performance.now() - start) / 1000);
    return msg;
  }

  /** Start the health-check probe unless one runs: check every interval until one succeeds. */
  healthcheck(): void {
    if (this.probing || this.stopped) return;
    this.probing = true;
    void this.probe();
  }

  /** Stop probing, close every connection and end every exchange in flight. */
  stop(): void {
    this.stopped = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeWake?.();
    for (const c of [...this.tcpConns]) c.close(new Error('forward stopped'));
    this.hcConn?.close(new Error('forward stopped'));
    for (const finish of [...this.udpOpen]) finish(new Error('forward stopped'));
  }

  /** Internal state, for tests and debugging: everything here drops to 0 when idle and stopped. */
  stats(): { udpInFlight: number; tcpConns: number; tcpInFlight: number; probing: boolean } {
    return {
      udpInFlight: this.udpOpen.size,
      tcpConns: this.tcpConns.length,
      tcpInFlight: this.tcpConns.reduce((n, c) => n + c.inflight, 0),
      probing: this.probing,
    };
  }

  private udp(bytes: Uint8Array, accept: (b: Uint8Array) => boolean, timeoutMs: number, countConn: boolean): Promise<Uint8Array> {
    if (this.stopped) return Promise.reject(new Error('forward stopped'));
    // A fresh socket per query is by definition not a cached connection.
    if (countConn) this.m.connCacheMisses.inc({ proxy_name: 'forward', to: this.addr, proto: 'udp' });
    return new Promise<Uint8Array>((resolve, reject) => {
      const sock = dgram.createSocket(this.up.family === 6 ? 'udp6' : 'udp4');
      let done = false;
      const finish = (err?: Error, buf?: Uint8Array) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.udpOpen.delete(finish);
        sock.close();
        if (err) reject(err);
        else resolve(buf!);
      };
      const timer = setTimeout(() => finish(new TimeoutError(`read udp ${this.addr}: i/o timeout`)), timeoutMs);
      this.udpOpen.add(finish);
      sock.on('error', (e) => finish(e));
      sock.on('message', (m: Buffer) => { if (accept(m)) finish(undefined, m); });
      sock.connect(this.up.port, this.up.host, () => {
        if (!done) sock.send(bytes, (e) => { if (e) finish(e); });
      });
    });
  }

  private async tcp(req: Request, want: { name: string; type: number; class: number }, deadline: number, fresh: boolean): Promise<Uint8Array> {
    if (this.stopped) throw new Error('forward stopped');
    const conn = this.acquire(fresh);
    let id = randomId();
    while (conn.hasId(id)) id = randomId();
    const bytes = outgoing(req.raw, req.query, id, 65535);
    try {
      return await conn.exchange(bytes, id, (b) => isReplyTo(b, id, want), Math.max(1, deadline - performance.now()));
    } catch (e) {
      // The upstream closed a connection we had cached (its idle timeout raced our query): not the
      // upstream's failure; try once more on a new connection (CoreDNS: ErrCachedClosed).
      if (e instanceof ConnClosedError && e.reused && !fresh && deadline > performance.now()) return this.tcp(req, want, deadline, true);
      throw e;
    }
  }

  private acquire(fresh: boolean): TcpConn {
    const labels = { proxy_name: 'forward', to: this.addr, proto: 'tcp' };
    if (!fresh) {
      let best: TcpConn | undefined;
      for (const c of this.tcpConns) {
        if (c.usable && c.inflight < maxPipeline && (!best || c.inflight < best.inflight)) best = c;
      }
      if (best) {
        this.m.connCacheHits.inc(labels);
        return best;
      }
    }
    this.m.connCacheMisses.inc(labels);
    const conn = new TcpConn(this.up.host, this.up.port, {
      onIdle: (c) => this.idle(c),
      onClose: (c) => {
        const i = this.tcpConns.indexOf(c);
        if (i >= 0) this.tcpConns.splice(i, 1);
      },
    });
    this.tcpConns.push(conn);
    return conn;
  }

  /** A connection finished its last query: keep it for `expire`, unless over max_idle_conns. */
  private idle(c: TcpConn): void {
    if (this.stopped || this.opts.expireMs <= 0) { c.close(); return; }
    if (this.opts.maxIdleConns > 0) {
      let idle = 0;
      for (const x of this.tcpConns) if (x.usable && x.inflight === 0) idle++;
      if (idle > this.opts.maxIdleConns) { c.close(); return; }
    }
    c.idleFor(this.opts.expireMs);
  }

  private async probe(): Promise<void> {
    try {
      while (!this.stopped) {
        const ok = await this.check();
        if (this.stopped) return;
        if (ok) { this.fails = 0; return; }
        this.fails++;
        this.m.healthcheckFailures.inc({ proxy_name: 'forward', to: this.addr });
        await new Promise<void>((resolve) => {
          this.probeWake = resolve;
          this.probeTimer = setTimeout(resolve, Math.max(this.opts.healthCheck.intervalMs, minProbeGapMs));
          this.probeTimer.unref();
        });
        this.probeWake = undefined;
      }
    } finally {
      this.probing = false;
    }
  }

  /** `<domain> IN NS` (RD unless no_rec): any reply at all means the upstream is alive. */
  private async check(): Promise<boolean> {
    const hc = this.opts.healthCheck;
    const id = randomId();
    const q = buildQuery(hc.domain, Type.NS, { id, rd: hc.recursionDesired });
    try {
      if (hc.tcp) {
        const conn = new TcpConn(this.up.host, this.up.port, { onIdle: (c) => c.close(), onClose: () => undefined });
        this.hcConn = conn;
        try {
          await conn.exchange(q, id, (b) => isResponseTo(b, id), hc.timeoutMs);
        } finally {
          conn.close();
          this.hcConn = undefined;
        }
      } else {
        await this.udp(q, (b) => isResponseTo(b, id), hc.timeoutMs, false);
      }
      return true;
    } catch {
      return false;
    }
  }
}
