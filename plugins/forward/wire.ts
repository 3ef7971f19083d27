// Byte-level helpers for forwarding: fresh random IDs, the outgoing copy of a client's query, and the
// cheap checks that decide whether a datagram is the reply we wait for (before any full decode).
import { randomFillSync } from 'node:crypto';
import { readName, type ParsedQuery } from '../../src/dns/query.ts';

// IDs come from the CSPRNG in batches: one syscall per 512 IDs instead of one per query.
const pool = new Uint8Array(1024);
let poolPos = pool.length;

/** A uniformly random 16-bit ID from the CSPRNG (an off-path spoofer must guess it). */
export function randomId(): number {
  if (poolPos >= pool.length) {
    randomFillSync(pool);
    poolPos = 0;
  }
  const id = (pool[poolPos]! << 8) | pool[poolPos + 1]!;
  poolPos += 2;
  return id;
}

/** Offset of the OPT record's CLASS (UDP payload size) field in a query, or -1. */
function optSizeOffset(raw: Uint8Array, q: ParsedQuery): number {
  if (!q.edns) return -1;
  let pos = q.questionEnd;
  const total = q.ancount + q.nscount + q.arcount;
  for (let i = 0; i < total; i++) {
    const n = readName(raw, pos);
    if (typeof n === 'string') return -1;
    pos = n[1];
    if (pos + 10 > raw.length) return -1;
    if (((raw[pos]! << 8) | raw[pos + 1]!) === 41) return pos + 2;
    pos += 10 + ((raw[pos + 8]! << 8) | raw[pos + 9]!);
  }
  return -1;
}

/**
 * The bytes to send upstream: the client's query as received with a new ID. When the client's EDNS
 * UDP size is larger than `maxUdp`, it is lowered to it (a forwarder should not invite replies that
 * it would have to truncate anyway, or that fragment on the way).
 */
export function outgoing(raw: Uint8Array, q: ParsedQuery, id: number, maxUdp: number): Uint8Array {
  const out = raw.slice();
  out[0] = id >> 8;
  out[1] = id & 0xff;
  if (q.edns && q.edns.udpSize > maxUdp) {
    const off = optSizeOffset(out, q);
    if (off >= 0) {
      const size = Math.max(512, maxUdp);
      out[off] = size >> 8;
      out[off + 1] = size & 0xff;
    }
  }
  return out;
}

/** Header check: long enough, our ID, and a response. */
export function isResponseTo(buf: Uint8Array, id: number): boolean {
  return buf.length >= 12 && ((buf[0]! << 8) | buf[1]!) === id && (buf[2]! & 0x80) !== 0;
}

/** What a reply's question must be: the query's name (lowercase), type and class. */
export interface Expect { name: string; type: number; class: number }

/**
 * Is `buf` the reply to our query: our ID, QR set, exactly one question equal to ours (name compared
 * case-insensitively, type, class)? Anything else is a stale or spoofed datagram to ignore.
 */
export function isReplyTo(buf: Uint8Array, id: number, want: Expect): boolean {
  if (!isResponseTo(buf, id)) return false;
  if (((buf[4]! << 8) | buf[5]!) !== 1) return false;
  const n = readName(buf, 12);
  if (typeof n === 'string') return false;
  const end = n[1];
  if (end + 4 > buf.length) return false;
  if (((buf[end]! << 8) | buf[end + 1]!) !== want.type) return false;
  if (((buf[end + 2]! << 8) | buf[end + 3]!) !== want.class) return false;
  const name = n[0];
  return name.length === want.name.length && name.toLowerCase() === want.name;
}

/** A 2-byte length prefix for DNS over TCP. */
export function frame(msg: Uint8Array): Uint8Array {
  const out = new Uint8Array(msg.length + 2);
  out[0] = msg.length >> 8;
  out[1] = msg.length & 0xff;
  out.set(msg, 2);
  return out;
}
