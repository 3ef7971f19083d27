// One DNS-over-TCP connection to an upstream, pipelined: several queries in flight at once, replies
// matched by ID (and question), in any order (RFC 7766 6.2.1.1).
import net from 'node:net';
import { frame } from './wire.ts';

/** The connection closed (or failed) with the query still waiting. */
export class ConnClosedError extends Error {
  /** Had the connection answered queries before this one? (A cached connection the upstream closed.) */
  readonly reused: boolean;
  constructor(message: string, reused: boolean, cause?: unknown) {
    super(message, { cause });
    this.name = 'ConnClosedError';
    this.reused = reused;
  }
}

export class TimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

interface Pending {
  accept: (buf: Uint8Array) => boolean;
  resolve: (buf: Uint8Array) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  reused: boolean;
}

export interface TcpConnHooks {
  /** No query in flight any more (the pool decides: keep for reuse, or close). */
  onIdle(conn: TcpConn): void;
  /** The connection is gone; drop it from the pool. */
  onClose(conn: TcpConn): void;
}

export class TcpConn {
  private readonly sock: net.Socket;
  private readonly pending = new Map<number, Pending>();
  private readonly hooks: TcpConnHooks;
  private readonly label: string;
  private buf: Buffer = Buffer.alloc(0);
  private idleTimer: NodeJS.Timeout | undefined;
  /** Replies received on this connection: once it answered, it is a proven, cached connection. */
  private answered = 0;
  /** No new queries: close once the ones in flight are done (after a timeout, say). */
  retired = false;
  closed = false;

  constructor(host: string, port: number, hooks: TcpConnHooks) {
    this.hooks = hooks;
    this.label = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    // Writes before 'connect' are buffered by the socket; a failed connect rejects them via 'error'.
    this.sock = net.connect({ host, port, noDelay: true });
    this.sock.on('data', (d: Buffer) => this.onData(d));
    this.sock.on('error', (e) => this.close(e));
    this.sock.on('close', () => this.close());
  }

  get inflight(): number { return this.pending.size; }
  get usable(): boolean { return !this.closed && !this.retired; }

  /** An ID not in flight on this connection (IDs must be unique per connection for pipelining). */
  hasId(id: number): boolean { return this.pending.has(id); }

  /** Send `msg` (its ID already `id`) and wait for a reply that `accept`s, or time out. */
  exchange(msg: Uint8Array, id: number, accept: (buf: Uint8Array) => boolean, timeoutMs: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new ConnClosedError(`tcp ${this.label}: connection closed`, true));
    if (this.idleTimer) { clearTimeout(this.idleTimer); this.idleTimer = undefined; }
    const reused = this.answered > 0;
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.get(id)?.timer !== timer) return;
        this.pending.delete(id);
        // An upstream that let one query time out may be wedged: send nothing new on this connection.
        this.retired = true;
        reject(new TimeoutError(`read tcp ${this.label}: i/o timeout`));
        this.maybeIdle();
      }, timeoutMs);
      this.pending.set(id, { accept, resolve, reject, timer, reused });
      this.sock.write(frame(msg));
    });
  }

  /** Close when idle, or after `ms` of idleness (the pool's `expire`). */
  idleFor(ms: number): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => { if (this.pending.size === 0) this.close(); }, ms);
    this.idleTimer.unref();
  }

  close(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.sock.destroy();
    const why = err ? `tcp ${this.label}: ${err.message}` : `tcp ${this.label}: connection closed by peer`;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new ConnClosedError(why, p.reused, err));
    }
    this.pending.clear();
    this.hooks.onClose(this);
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    let answered = false;
    while (this.buf.length >= 2) {
      const len = this.buf.readUInt16BE(0);
      if (this.buf.length < len + 2) break;
      const msg = new Uint8Array(this.buf.buffer, this.buf.byteOffset + 2, len);
      this.buf = this.buf.subarray(len + 2);
      if (len < 12) continue;
      const p = this.pending.get((msg[0]! << 8) | msg[1]!);
      // Unknown ID (a reply after its query timed out) or a wrong question: ignore, keep waiting.
      if (!p || !p.accept(msg)) continue;
      this.pending.delete((msg[0]! << 8) | msg[1]!);
      clearTimeout(p.timer);
      p.resolve(msg);
      this.answered++;
      answered = true;
    }
    if (answered) this.maybeIdle();
  }

  private maybeIdle(): void {
    if (this.closed || this.pending.size > 0) return;
    if (this.retired) { this.close(); return; }
    this.hooks.onIdle(this);
  }
}
