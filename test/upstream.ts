// A programmable DNS server on loopback for tests (forward, and anyone who needs "an upstream"):
// UDP and TCP on the same 127.0.0.1 port; each test says how to answer, and can count what arrived.
//
//   const up = await startUpstream();            // answers NXDOMAIN until told otherwise
//   up.handle((q) => ({ answer: [`${q.name} 5 IN A 10.0.0.1`] }));
//   up.handle(() => ({ drop: true }));            // never answer (a dead upstream)
//   up.count({ proto: 'tcp', name: 'example.org.' });
//   await up.close();
//
// Only loopback is ever used: the server binds 127.0.0.1 and answers whoever asked.
import dgram from 'node:dgram';
import net from 'node:net';
import { readName } from '../src/dns/query.ts';
import { encode } from '../src/dns/codec.ts';
import { type Msg, type RR, emptyFlags } from '../src/dns/types.ts';
import { parseRR } from '../src/dns/text.ts';

/** One query as the upstream saw it. */
export interface UpstreamQuery {
  proto: 'udp' | 'tcp';
  id: number;
  /** Question name as sent (letter case kept), with a trailing dot. */
  qname: string;
  /** Question name in lowercase. */
  name: string;
  type: number;
  class: number;
  rd: boolean;
  /** The OPT record's UDP size and DO bit, or null without EDNS. */
  edns: { udpSize: number; do: boolean } | null;
  raw: Uint8Array;
  /** Which TCP connection (1, 2, ...) carried it; 0 for UDP. */
  conn: number;
  /** The client's source port. */
  port: number;
}

/** How to answer one query. Every field is optional; `{}` is an empty NOERROR answer. */
export interface Behaviour {
  rcode?: number;
  /** Zone-file lines (or records) for the answer, authority and additional sections. */
  answer?: Array<string | RR>;
  authority?: Array<string | RR>;
  additional?: Array<string | RR>;
  aa?: boolean;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Do not answer at all. */
  drop?: boolean;
  /** Over UDP: TC set and empty sections. Over TCP: the full answer. */
  truncate?: boolean;
  /** Answer with a different ID (a spoof, or a stale reply). */
  wrongId?: boolean;
  /** Answer a different question (name `wrong-question.invalid.`). */
  wrongQuestion?: boolean;
  /** Send these bytes instead of an encoded reply (garbage tests); the ID is not patched. */
  raw?: Uint8Array;
  /** Over TCP: close the connection instead of answering. */
  closeTcp?: boolean;
  /** Replies to send first, in order (e.g. spoofed ones before the real answer). */
  before?: Behaviour[];
}

export type Responder = (q: UpstreamQuery) => Behaviour | Promise<Behaviour>;

export interface Upstream {
  readonly port: number;
  /** "127.0.0.1:PORT", as forward names an upstream. */
  readonly addr: string;
  /** Every query received, oldest first. */
  readonly queries: UpstreamQuery[];
  /** TCP connections accepted so far. */
  readonly tcpConnections: number;
  /** TCP connections open right now. */
  readonly openTcpConnections: number;
  /** Replace the responder (default: NXDOMAIN). */
  handle(r: Responder): void;
  /** Count received queries, optionally by transport and/or (case-insensitive) name and type. */
  count(filter?: { proto?: 'udp' | 'tcp'; name?: string; type?: number }): number;
  /** Forget recorded queries (counters of connections are kept). */
  reset(): void;
  /** Close every open TCP connection from the server side (an upstream's idle timeout). */
  closeTcpConnections(): void;
  close(): Promise<void>;
}

const toRR = (r: string | RR): RR => (typeof r === 'string' ? parseRR(r) : r);

function parse(buf: Uint8Array, proto: 'udp' | 'tcp', conn: number, port: number): UpstreamQuery | undefined {
  if (buf.length < 12) return undefined;
  const id = (buf[0]! << 8) | buf[1]!;
  const flags = (buf[2]! << 8) | buf[3]!;
  if (flags & 0x8000) return undefined;
  const n = readName(buf, 12);
  if (typeof n === 'string') return undefined;
  const [qname, after] = n;
  if (after + 4 > buf.length) return undefined;
  let edns: UpstreamQuery['edns'] = null;
  const arcount = (buf[10]! << 8) | buf[11]!;
  const rest = ((buf[6]! << 8) | buf[7]!) + ((buf[8]! << 8) | buf[9]!);
  let pos = after + 4;
  for (let i = 0; i < rest + arcount; i++) {
    const rn = readName(buf, pos);
    if (typeof rn === 'string' || rn[1] + 10 > buf.length) break;
    pos = rn[1];
    const type = (buf[pos]! << 8) | buf[pos + 1]!;
    if (type === 41) edns = { udpSize: (buf[pos + 2]! << 8) | buf[pos + 3]!, do: (buf[pos + 6]! & 0x80) !== 0 };
    pos += 10 + ((buf[pos + 8]! << 8) | buf[pos + 9]!);
  }
  return {
    proto, id, qname, name: qname.toLowerCase(), type: (buf[after]! << 8) | buf[after + 1]!,
    class: (buf[after + 2]! << 8) | buf[after + 3]!, rd: (flags & 0x0100) !== 0, edns, raw: buf, conn, port,
  };
}

function build(q: UpstreamQuery, b: Behaviour): Uint8Array {
  if (b.raw) return b.raw;
  const flags = emptyFlags();
  flags.qr = true;
  flags.rd = q.rd;
  flags.ra = true;
  flags.aa = b.aa ?? false;
  const tcOnly = b.truncate === true && q.proto === 'udp';
  flags.tc = tcOnly;
  const msg: Msg = {
    id: b.wrongId ? (q.id + 1) & 0xffff : q.id,
    opcode: 0, rcode: b.rcode ?? 0, flags,
    question: [{ name: b.wrongQuestion ? 'wrong-question.invalid.' : q.qname, type: q.type, class: q.class }],
    answer: tcOnly ? [] : (b.answer ?? []).map(toRR),
    authority: tcOnly ? [] : (b.authority ?? []).map(toRR),
    additional: tcOnly ? [] : (b.additional ?? []).map(toRR),
    edns: q.edns ? { udpSize: 1232, version: 0, do: q.edns.do, options: [] } : null,
  };
  // Like a real server: over UDP a reply larger than the client accepts is truncated (TC).
  const limit = q.proto === 'udp' ? Math.max(512, q.edns?.udpSize ?? 512) : 65535;
  return encode(msg, limit);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Start an upstream on 127.0.0.1 (UDP and TCP on the same, free port). */
export async function startUpstream(responder?: Responder): Promise<Upstream> {
  let respond: Responder = responder ?? (() => ({ rcode: 3 }));
  const queries: UpstreamQuery[] = [];
  const sockets = new Set<net.Socket>();
  let connCount = 0;
  let closed = false;

  const { udp, tcp, port } = await bindPair();

  async function answer(q: UpstreamQuery, send: (b: Uint8Array) => void, closeConn: () => void): Promise<void> {
    queries.push(q);
    let b: Behaviour;
    try { b = await respond(q); } catch { return; }
    for (const first of b.before ?? []) {
      if (first.delayMs) await sleep(first.delayMs);
      if (closed) return;
      send(build(q, first));
    }
    if (b.delayMs) await sleep(b.delayMs);
    if (closed || b.drop) return;
    if (b.closeTcp && q.proto === 'tcp') { closeConn(); return; }
    send(build(q, b));
  }

  udp.on('message', (m, rinfo) => {
    const q = parse(new Uint8Array(m), 'udp', 0, rinfo.port);
    if (!q) return;
    void answer(q, (b) => { if (!closed) udp.send(b, rinfo.port, rinfo.address); }, () => undefined);
  });

  tcp.on('connection', (sock) => {
    const conn = ++connCount;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < len + 2) break;
        const q = parse(new Uint8Array(buf.subarray(2, len + 2)), 'tcp', conn, sock.remotePort ?? 0);
        buf = buf.subarray(len + 2);
        if (!q) continue;
        void answer(q, (b) => {
          if (sock.destroyed) return;
          const f = Buffer.alloc(b.length + 2);
          f.writeUInt16BE(b.length, 0);
          f.set(b, 2);
          sock.write(f);
        }, () => sock.destroy());
      }
    });
  });

  return {
    port,
    addr: `127.0.0.1:${port}`,
    queries,
    get tcpConnections() { return connCount; },
    get openTcpConnections() { return sockets.size; },
    handle(r) { respond = r; },
    count(f = {}) {
      const name = f.name?.toLowerCase();
      return queries.filter((q) => (f.proto === undefined || q.proto === f.proto)
        && (name === undefined || q.name === name || q.name === name + '.')
        && (f.type === undefined || q.type === f.type)).length;
    },
    reset() { queries.length = 0; },
    closeTcpConnections() { for (const s of sockets) s.destroy(); },
    async close() {
      if (closed) return;
      closed = true;
      for (const s of sockets) s.destroy();
      await Promise.all([
        new Promise<void>((r) => udp.close(() => r())),
        new Promise<void>((r) => tcp.close(() => r())),
      ]);
    },
  };
}

/** A UDP socket and a TCP server on the same free loopback port (retrying if TCP finds it taken). */
async function bindPair(): Promise<{ udp: dgram.Socket; tcp: net.Server; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => { udp.off('error', reject); resolve(); });
    });
    const port = udp.address().port;
    const tcp = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      udp.on('error', () => undefined);
      return { udp, tcp, port };
    }
    udp.close();
    if (attempt > 20) throw new Error('startUpstream: no free port for UDP and TCP');
  }
}

/** A port on 127.0.0.1 where nothing listens (UDP gets ICMP unreachable, TCP gets RST). */
export async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
