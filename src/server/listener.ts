// One UDP socket and one TCP server per listen address. The router is swapped on reload while the
// sockets stay open, so a configuration change never leaves a gap.
import dgram from 'node:dgram';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { handle, memoAnswered, memoReply, type PipelineContext } from './pipeline.ts';
import { coreSysctl } from './udpstats.ts';
import { addressFamily } from '../request.ts';

export interface ListenerOptions {
  /** Close a TCP connection after this long without traffic (ms). */
  tcpIdleMs: number;
  /** Concurrent TCP connections; more are refused. */
  maxTcpConnections: number;
  /** Queries in flight per TCP connection before it stops reading. */
  maxTcpInflight: number;
  /** Bytes queued to a TCP client before it is considered stuck and dropped. */
  maxTcpPendingBytes: number;
  /** Socket buffer sizes asked of the kernel (it may clamp them to net.core.[rw]mem_max). */
  udpBufferBytes: number;
  /**
   * Bind with SO_REUSEPORT (workers: each binds the same address and the kernel spreads clients
   * across them). Off by default: without it a second server on the port fails to start instead.
   */
  reusePort: boolean;
}

export const defaultListenerOptions: ListenerOptions = {
  tcpIdleMs: 10_000,
  maxTcpConnections: 1000,
  maxTcpInflight: 64,
  maxTcpPendingBytes: 1 << 20,
  udpBufferBytes: 4 << 20,
  reusePort: false,
};

/**
 * dgram resolves every destination through a lookup function; ours only ever sends to the address a
 * datagram came from, always a literal, so the answer is the address itself, given synchronously.
 * Node's default (dns.lookup) validates it and defers the send to the next tick: ~0.4 us per reply.
 */
function literalLookup(address: string, family: unknown, callback: (err: null, address: string, family: number) => void): void {
  callback(null, address, address.includes(':') ? 6 : 4);
}

/** "::ffff:10.0.0.1" → "10.0.0.1" (dual-stack sockets report IPv4 clients this way). */
function plainAddress(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export class DnsListener {
  readonly host: string;
  readonly port: number;
  ctx: PipelineContext;
  private readonly opts: ListenerOptions;
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  /** Open TCP connections and their queries in flight. */
  private readonly conns = new Map<net.Socket, { inflight: number }>();
  private inflight = 0;
  private closing = false;
  private drained: (() => void) | undefined;

  constructor(host: string, port: number, ctx: PipelineContext, opts: Partial<ListenerOptions> = {}) {
    this.host = host;
    this.port = port;
    this.ctx = ctx;
    this.opts = { ...defaultListenerOptions, ...opts };
  }

  get udpPort(): number { return (this.udp?.address() as AddressInfo | undefined)?.port ?? 0; }
  get tcpPort(): number { return (this.tcp?.address() as AddressInfo | null)?.port ?? 0; }
  get inflightCount(): number { return this.inflight; }

  async listen(): Promise<void> {
    if (this.port !== 0) {
      await this.listenUdp();
      await this.listenTcp(this.port);
      return;
    }
    // Port 0 (tests): TCP takes the port UDP got, so one number reaches both. That TCP port may
    // already be in use by someone else's connection: then try another pair.
    for (let attempt = 0; ; attempt++) {
      await this.listenUdp();
      try {
        await this.listenTcp(this.udpPort);
        return;
      } catch (e) {
        const u = this.udp;
        this.udp = undefined;
        if (u) await new Promise<void>((resolve) => u.close(() => resolve()));
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20) throw e;
      }
    }
  }

  private async listenUdp(): Promise<void> {
    const bindOn = async (type: 'udp4' | 'udp6', address: string): Promise<dgram.Socket> => {
      const s = dgram.createSocket({
        type, ipv6Only: false, recvBufferSize: this.opts.udpBufferBytes, sendBufferSize: this.opts.udpBufferBytes,
        lookup: literalLookup as unknown as dgram.SocketOptions['lookup'],
        ...(this.opts.reusePort ? { reusePort: true } : {}),
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind({ port: this.port, address }, () => { s.off('error', reject); resolve(); });
      });
      return s;
    };
    let s: dgram.Socket;
    if (this.host === '') {
      // Every address, both families on one socket; hosts without IPv6 fall back to IPv4 only.
      try { s = await bindOn('udp6', '::'); } catch { s = await bindOn('udp4', '0.0.0.0'); }
    } else {
      s = await bindOn(this.host.includes(':') ? 'udp6' : 'udp4', this.host);
    }
    s.on('error', (e) => this.ctx.log.error(`udp ${this.ctx.server}: ${e.message}`));
    s.on('message', (msg, rinfo) => this.onDatagram(s, msg, rinfo));
    this.udp = s;
    this.reportBuffers();
  }

  /** The UDP socket's buffer sizes as the kernel reports them (getsockopt), or undefined before listen. */
  get udpBuffers(): { receive: number; send: number } | undefined {
    const s = this.udp;
    if (!s) return undefined;
    try {
      return { receive: s.getRecvBufferSize(), send: s.getSendBufferSize() };
    } catch {
      return undefined; // closed meanwhile
    }
  }

  /**
   * Log the buffers the kernel granted; warn when it clamped the request. Linux caps SO_RCVBUF and
   * SO_SNDBUF at net.core.rmem_max / wmem_max and then doubles the value (its own bookkeeping), so a
   * granted size below twice the request means the sysctl was lower than asked for.
   */
  private reportBuffers(): void {
    const b = this.udpBuffers;
    const want = this.opts.udpBufferBytes;
    if (!b || want <= 0) return;
    const kib = (n: number) => `${Math.round(n / 1024)} KiB`;
    const where = `udp ${this.ctx.server} (${this.host || '*'}:${this.udpPort})`;
    this.ctx.log.info(`${where}: socket buffers: receive ${kib(b.receive)}, send ${kib(b.send)} (as the kernel reports them: twice the ${kib(want)} asked, unless clamped)`);
    for (const [what, got, sysctl] of [['receive', b.receive, 'rmem_max'], ['send', b.send, 'wmem_max']] as const) {
      if (got >= 2 * want) continue;
      const max = coreSysctl(sysctl);
      this.ctx.log.warn(`${where}: the kernel clamped the ${what} buffer: asked ${kib(want)}, granted ${kib(got / 2)}` +
        ` (net.core.${sysctl} = ${Number.isFinite(max) ? max : '?'}): bursts will be dropped sooner; raise net.core.${sysctl} on the node (deploy/README.md)`);
    }
  }

  private onDatagram(s: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.closing) return;
    if (this.ctx.memo !== null) {
      // A question answered before: bytes copied, ID patched; no parse, no chain (src/server/memo.ts).
      const t0 = performance.now();
      const out = memoReply(this.ctx, msg, 'udp', t0);
      if (out !== null) {
        s.send(out, rinfo.port, rinfo.address);
        // Sent at once unless the socket had to queue it: then those bytes stay with the queue. (This
        // relies on literalLookup: with Node's default lookup send() itself is deferred a tick.)
        if (s.getSendQueueCount() !== 0) this.ctx.memo.detach();
        memoAnswered(this.ctx, 'udp', addressFamily(rinfo.address), msg.length, out.length, t0);
        return;
      }
    }
    const addr = plainAddress(rinfo.address);
    const port = rinfo.port;
    // No completion callback: with one, every reply costs a deferred callback (~0.6 us). Sends the
    // kernel did not take at once stay in the socket's queue, which close() waits for.
    const send = (bytes: Uint8Array) => {
      if (this.udp !== s) return;
      s.send(bytes, port, rinfo.address);
    };
    this.inflight++;
    let r: void | Promise<void> = undefined;
    try {
      r = handle(this.ctx, msg, 'udp', addr, port, send, this.host, this.port);
    } catch (e) {
      // handle() catches plugin failures itself; this is a last line of defence.
      this.ctx.log.error(`unexpected failure handling a datagram: ${String(e)}`);
    }
    if (r instanceof Promise) r.finally(() => this.done());
    else this.done();
  }

  private done(): void {
    this.inflight--;
    if (this.inflight === 0 && this.drained) this.drained();
  }

  private async listenTcp(port: number): Promise<void> {
    const server = net.createServer({ noDelay: true, allowHalfOpen: false }, (sock) => this.onConnection(sock));
    server.maxConnections = this.opts.maxTcpConnections;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host: this.host === '' ? undefined : this.host, ipv6Only: false, ...(this.opts.reusePort ? { reusePort: true } : {}) }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.ctx.log.error(`tcp ${this.ctx.server}: ${e.message}`));
    this.tcp = server;
  }

  private onConnection(sock: net.Socket): void {
    if (this.closing) { sock.destroy(); return; }
    const state = { inflight: 0 };
    this.conns.set(sock, state);
    const addr = plainAddress(sock.remoteAddress ?? '');
    const family = addressFamily(addr);
    const port = sock.remotePort ?? 0;
    let buf: Buffer = Buffer.alloc(0);
    sock.setTimeout(this.opts.tcpIdleMs, () => sock.destroy());
    sock.on('error', () => sock.destroy());
    sock.on('close', () => this.conns.delete(sock));
    const send = (bytes: Uint8Array) => {
      if (sock.destroyed) return;
      if (sock.writableLength > this.opts.maxTcpPendingBytes) { sock.destroy(); return; } // not reading: let go
      const frame = Buffer.allocUnsafe(bytes.length + 2);
      frame.writeUInt16BE(bytes.length, 0);
      frame.set(bytes, 2);
      sock.write(frame);
    };
    const finished = () => {
      state.inflight--;
      this.done();
      if (state.inflight < this.opts.maxTcpInflight && sock.isPaused() && !this.closing) sock.resume();
      if (this.closing && state.inflight === 0) sock.end();
    };
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (len === 0) { sock.destroy(); return; }
        if (buf.length < len + 2) break;
        const frame = buf.subarray(2, len + 2);
        buf = buf.subarray(len + 2);
        if (this.closing) continue;
        if (this.ctx.memo !== null) {
          const t0 = performance.now();
          const out = memoReply(this.ctx, frame, 'tcp', t0);
          if (out !== null) {
            send(out);
            memoAnswered(this.ctx, 'tcp', family, frame.length, out.length, t0);
            continue;
          }
        }
        state.inflight++;
        this.inflight++;
        let r: void | Promise<void> = undefined;
        try {
          r = handle(this.ctx, frame, 'tcp', addr, port, send, this.host, this.port);
        } catch (e) {
          this.ctx.log.error(`unexpected failure handling a TCP query: ${String(e)}`);
        }
        if (r instanceof Promise) r.finally(finished);
        else finished();
      }
      // Pipelining is welcome, flooding is not: stop reading until answers go out.
      if (state.inflight >= this.opts.maxTcpInflight) sock.pause();
    });
  }

  /** Stop taking queries, answer those in flight (up to `graceMs`), then close the sockets. */
  async close(graceMs = 5_000): Promise<void> {
    this.closing = true;
    this.tcp?.close();
    for (const [c, st] of this.conns) {
      // Idle connections go now; busy ones end when their last answer is written.
      if (st.inflight === 0) c.end();
    }
    const deadline = performance.now() + graceMs;
    if (this.inflight > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, graceMs);
        t.unref();
        this.drained = () => { clearTimeout(t); resolve(); };
      });
    }
    // Replies the kernel has not taken yet (a full send buffer) would be lost by closing now.
    while (this.udp && this.udp.getSendQueueCount() > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    for (const c of this.conns.keys()) c.destroy();
    const u = this.udp;
    this.udp = undefined;
    if (u) await new Promise<void>((resolve) => u.close(() => resolve()));
    const t = this.tcp;
    this.tcp = undefined;
    if (t) await new Promise<void>((resolve) => t.close(() => resolve()));
  }
}
