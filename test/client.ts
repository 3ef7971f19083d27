// A small DNS client for tests: real UDP and TCP sockets on loopback.
import dgram from 'node:dgram';
import net from 'node:net';

/** Send one datagram, wait for one reply (or undefined after `timeoutMs`). */
export function udpExchange(port: number, bytes: Uint8Array, opts: { host?: string; timeoutMs?: number } = {}): Promise<Uint8Array | undefined> {
  const host = opts.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const t = setTimeout(() => { s.close(); resolve(undefined); }, opts.timeoutMs ?? 2000);
    s.on('error', (e) => { clearTimeout(t); s.close(); reject(e); });
    s.on('message', (m) => { clearTimeout(t); s.close(); resolve(new Uint8Array(m)); });
    s.send(bytes, port, host);
  });
}

/** Open a TCP connection that frames queries and collects framed replies. */
export async function tcpConnect(port: number, host = '127.0.0.1'): Promise<TcpClient> {
  const sock = net.connect({ port, host });
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  return new TcpClient(sock);
}

export class TcpClient {
  readonly sock: net.Socket;
  private buf = Buffer.alloc(0);
  private readonly replies: Uint8Array[] = [];
  private waiters: Array<() => void> = [];
  closed = false;

  constructor(sock: net.Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 2) {
        const len = this.buf.readUInt16BE(0);
        if (this.buf.length < len + 2) break;
        this.replies.push(new Uint8Array(this.buf.subarray(2, len + 2)));
        this.buf = this.buf.subarray(len + 2);
      }
      this.wake();
    });
    sock.on('close', () => { this.closed = true; this.wake(); });
    sock.on('error', () => undefined);
  }

  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }

  send(bytes: Uint8Array): void {
    const f = Buffer.alloc(bytes.length + 2);
    f.writeUInt16BE(bytes.length, 0);
    f.set(bytes, 2);
    this.sock.write(f);
  }

  /** Wait for `n` replies in total (or until closed / timeout). */
  async read(n = 1, timeoutMs = 2000): Promise<Uint8Array[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length < n && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.replies.splice(0, n);
  }

  close(): void { this.sock.destroy(); }
}

export async function tcpExchange(port: number, bytes: Uint8Array, host = '127.0.0.1'): Promise<Uint8Array | undefined> {
  const c = await tcpConnect(port, host);
  c.send(bytes);
  const [r] = await c.read(1);
  c.close();
  return r;
}
