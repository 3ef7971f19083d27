// What the kernel knows about our UDP sockets and Node cannot tell us: datagrams dropped because a
// socket's receive buffer was full (the `drops` column of /proc/net/udp and /proc/net/udp6). A Node
// server never sees those queries, so without this an overloaded server loses them silently.
//
// Read at scrape time only. Sockets are found by local address and port among the sockets this
// process owns (/proc/self/fd → "socket:[INODE]"): with -workers N every worker binds the same
// address (SO_REUSEPORT), and all of them are summed.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { endianness } from 'node:os';

export interface ProcUdpSocket {
  /** Canonical text form: "127.0.0.1", "::", "::1" (IPv6 compressed, lowercase). */
  localAddress: string;
  localPort: number;
  /** Bytes waiting in the receive queue, as the kernel accounts them (truesize). */
  rxQueue: number;
  inode: number;
  drops: number;
}

/** The address bytes of a /proc/net/udp[6] hex field: 32-bit words, each in host byte order. */
function hexAddress(hex: string, littleEndian: boolean): number[] {
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = [0, 2, 4, 6].map((i) => parseInt(hex.slice(w + i, w + i + 2), 16));
    bytes.push(...(littleEndian ? word.reverse() : word));
  }
  return bytes;
}

/** Canonical form of an IP address (IPv6 compressed, lowercase, as the URL parser writes it). */
export function canonicalAddress(a: string): string {
  if (!a.includes(':')) return a;
  try {
    return new URL(`http://[${a}]/`).hostname.slice(1, -1);
  } catch {
    return a.toLowerCase();
  }
}

function formatAddress(bytes: number[]): string {
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return canonicalAddress(groups.join(':'));
}

/**
 * Parse /proc/net/udp or /proc/net/udp6. Lines the format does not explain are skipped (the first
 * line is the header; older kernels have fewer columns only at the end, which `drops` is).
 */
export function parseProcNetUdp(text: string, littleEndian = endianness() === 'LE'): ProcUdpSocket[] {
  const out: ProcUdpSocket[] = [];
  for (const line of text.split('\n')) {
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    const f = line.trim().split(/\s+/);
    if (f.length < 13 || !/^\d+:$/.test(f[0]!)) continue;
    const [addrHex, portHex] = f[1]!.split(':');
    if (!addrHex || !portHex || (addrHex.length !== 8 && addrHex.length !== 32)) continue;
    const rx = f[4]!.split(':')[1] ?? '';
    const drops = Number(f[12]);
    const inode = Number(f[9]);
    if (!Number.isFinite(drops) || !Number.isFinite(inode)) continue;
    out.push({
      localAddress: formatAddress(hexAddress(addrHex, littleEndian)),
      localPort: parseInt(portHex, 16),
      rxQueue: parseInt(rx, 16) || 0,
      inode,
      drops,
    });
  }
  return out;
}

/** Inodes of the sockets open in this process ("socket:[123]" links in /proc/self/fd). */
export function ownSocketInodes(fdDir = '/proc/self/fd'): Set<number> {
  const out = new Set<number>();
  let fds: string[];
  try { fds = readdirSync(fdDir); } catch { return out; }
  for (const fd of fds) {
    let link: string;
    try { link = readlinkSync(`${fdDir}/${fd}`); } catch { continue; } // closed meanwhile
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) out.add(Number(m[1]));
  }
  return out;
}

/** A listen address: host "" is every address (the socket is bound to :: or 0.0.0.0). */
export interface UdpAddress { host: string; port: number }

const wildcard = new Set(['0.0.0.0', '::']);

/** Does a socket's local address serve this listen address? */
export function servesAddress(s: ProcUdpSocket, a: UdpAddress): boolean {
  if (s.localPort !== a.port) return false;
  if (a.host === '') return wildcard.has(s.localAddress);
  return s.localAddress === canonicalAddress(a.host);
}

export interface UdpSocketTotals {
  /** Sockets found for the address (one, or one per worker). */
  sockets: number;
  drops: number;
  rxQueue: number;
}

/** Read the kernel's table once; sum drops and queues per address over this process's sockets. */
export function readUdpTotals(addresses: UdpAddress[], o: { procNet?: string; fdDir?: string } = {}): UdpSocketTotals[] {
  const procNet = o.procNet ?? '/proc/net';
  const sockets: ProcUdpSocket[] = [];
  for (const f of ['udp', 'udp6']) {
    try { sockets.push(...parseProcNetUdp(readFileSync(`${procNet}/${f}`, 'utf8'))); } catch { /* no IPv6, or not Linux */ }
  }
  const own = ownSocketInodes(o.fdDir);
  return addresses.map((a) => {
    const t = { sockets: 0, drops: 0, rxQueue: 0 };
    for (const s of sockets) {
      if (!own.has(s.inode) || !servesAddress(s, a)) continue;
      t.sockets++;
      t.drops += s.drops;
      t.rxQueue += s.rxQueue;
    }
    return t;
  });
}

/** net.core.rmem_max / wmem_max: the most a socket may ask for without CAP_NET_ADMIN (NaN if unreadable). */
export function coreSysctl(name: 'rmem_max' | 'wmem_max' | 'rmem_default' | 'wmem_default'): number {
  try { return Number(readFileSync(`/proc/sys/net/core/${name}`, 'utf8').trim()); } catch { return NaN; }
}

/**
 * A counter over a source that can go backwards (a socket closed on reload takes its drops with it):
 * each time the source falls, what it had shown is kept, so the exported value never decreases.
 */
export class MonotonicTotal {
  private base = 0;
  private last = 0;
  update(current: number): number {
    if (current < this.last) this.base += this.last;
    this.last = current;
    return this.base + current;
  }
}

/** Drops summed over every UDP socket a process owns (a client's, such as dnsperf's), by its fd directory. */
export function processUdpDrops(fdDir: string, procNet = '/proc/net'): number {
  const own = ownSocketInodes(fdDir);
  let drops = 0;
  for (const f of ['udp', 'udp6']) {
    let text: string;
    try { text = readFileSync(`${procNet}/${f}`, 'utf8'); } catch { continue; }
    for (const s of parseProcNetUdp(text)) if (own.has(s.inode)) drops += s.drops;
  }
  return drops;
}
