// Hand-rolled DNS bytes for the bench's own clients (propagation poller, search-path client, upstream):
// independent of the codec under test, and cheap enough not to be what the bench measures.

export const A = 1;
export const AAAA = 28;
export const SRV = 33;

/** Wire form of a name (`a.b.c` or `a.b.c.`), lowercase not enforced. */
export function nameBytes(name: string): number[] {
  const out: number[] = [];
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (n !== '') {
    for (const label of n.split('.')) {
      out.push(label.length);
      for (let i = 0; i < label.length; i++) out.push(label.charCodeAt(i) & 0xff);
    }
  }
  out.push(0);
  return out;
}

/** A query with RD set and no EDNS; patch the ID in bytes 0-1 before sending. */
export function query(name: string, type: number, id = 0): Uint8Array {
  return Uint8Array.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...nameBytes(name), type >> 8, type & 0xff, 0, 1]);
}

/** Offset just past a (possibly compressed) name at `off`. */
export function skipName(buf: Uint8Array, off: number): number {
  for (;;) {
    const len = buf[off];
    if (len === undefined) return buf.length;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2;
    off += len + 1;
  }
}

export interface Reply { id: number; rcode: number; ancount: number; tc: boolean; types: number[]; addresses: string[] }

function ipText(buf: Uint8Array, off: number, len: number): string {
  if (len === 4) return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
  const parts: string[] = [];
  for (let i = 0; i < len; i += 2) parts.push(((buf[off + i]! << 8) | buf[off + i + 1]!).toString(16));
  return parts.join(':');
}

/** Header fields, answer types and A/AAAA addresses of a reply. */
export function parseReply(buf: Uint8Array): Reply {
  const id = (buf[0]! << 8) | buf[1]!;
  const rcode = buf[3]! & 0x0f;
  const tc = (buf[2]! & 0x02) !== 0;
  const qdcount = (buf[4]! << 8) | buf[5]!;
  const ancount = (buf[6]! << 8) | buf[7]!;
  let off = 12;
  for (let i = 0; i < qdcount; i++) off = skipName(buf, off) + 4;
  const types: number[] = [];
  const addresses: string[] = [];
  for (let i = 0; i < ancount && off < buf.length; i++) {
    off = skipName(buf, off);
    const type = (buf[off]! << 8) | buf[off + 1]!;
    const rdlen = (buf[off + 8]! << 8) | buf[off + 9]!;
    off += 10;
    types.push(type);
    if (type === A || type === AAAA) addresses.push(ipText(buf, off, rdlen));
    off += rdlen;
  }
  return { id, rcode, ancount, tc, types, addresses };
}
