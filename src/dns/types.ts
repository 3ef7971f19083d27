// The message vocabulary (miekg/dns style): FQDN names with a trailing dot, numeric types and rcodes.
// Our own codec (src/dns/codec.ts, encode.ts, wire.ts) reads and writes these; dns-packet is only a
// test-time cross-check (a devDependency).

export const Type = {
  A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, HINFO: 13, MX: 15, TXT: 16, AAAA: 28, SRV: 33,
  NAPTR: 35, DS: 43, RRSIG: 46, NSEC: 47, DNSKEY: 48, OPT: 41, HTTPS: 65, SVCB: 64,
  AXFR: 252, IXFR: 251, ANY: 255, CAA: 257,
} as const;

export const Class = { IN: 1, CH: 3, HS: 4, NONE: 254, ANY: 255 } as const;

export const Rcode = {
  NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5,
  YXDOMAIN: 6, YXRRSET: 7, NXRRSET: 8, NOTAUTH: 9, NOTZONE: 10, BADVERS: 16,
} as const;

export const Opcode = { QUERY: 0, IQUERY: 1, STATUS: 2, NOTIFY: 4, UPDATE: 5 } as const;

const typeNames: Record<number, string> = {};
for (const [k, v] of Object.entries(Type)) typeNames[v] = k;
const rcodeNames: Record<number, string> = {};
for (const [k, v] of Object.entries(Rcode)) rcodeNames[v] = k;
const classNames: Record<number, string> = {};
for (const [k, v] of Object.entries(Class)) classNames[v] = k;

export function typeName(t: number): string { return typeNames[t] ?? `TYPE${t}`; }
export function rcodeName(r: number): string { return rcodeNames[r] ?? `RCODE${r}`; }
export function className(c: number): string { return classNames[c] ?? `CLASS${c}`; }
export function typeFromName(s: string): number | undefined {
  const u = s.toUpperCase();
  if (u in Type) return Type[u as keyof typeof Type];
  const m = /^TYPE(\d+)$/.exec(u);
  return m ? Number(m[1]) : undefined;
}

export interface Question { name: string; type: number; class: number }

interface RRBase { name: string; class: number; ttl: number }
/** A or AAAA: the address in text form. */
export interface AddrRR extends RRBase { type: 1 | 28; data: string }
/** NS, CNAME, PTR: a domain name. */
export interface NameRR extends RRBase { type: 2 | 5 | 12; data: string }
export interface SrvRR extends RRBase { type: 33; data: { priority: number; weight: number; port: number; target: string } }
export interface SoaRR extends RRBase {
  type: 6;
  data: { mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number };
}
export interface MxRR extends RRBase { type: 15; data: { preference: number; exchange: string } }
/** TXT: character-strings, each at most 255 bytes. */
export interface TxtRR extends RRBase { type: 16; data: string[] }
/** Any other type: opaque RDATA, passed through byte for byte. */
export interface RawRR extends RRBase { type: number; data: Uint8Array }
export type RR = AddrRR | NameRR | SrvRR | SoaRR | MxRR | TxtRR | RawRR;

export interface EdnsOption { code: number; data: Uint8Array }
export interface Edns {
  udpSize: number;
  version: number;
  do: boolean;
  /** Upper 8 bits of a 12-bit rcode as found on the wire (decode only; encode derives it from msg.rcode). */
  extRcode?: number;
  options: EdnsOption[];
}

export interface Flags {
  qr: boolean; aa: boolean; tc: boolean; rd: boolean; ra: boolean; ad: boolean; cd: boolean;
}

/**
 * A DNS message. `rcode` is the full 12-bit value (BADVERS = 16 is carried by the OPT record).
 * `wire`, when set, is a prebuilt encoding the server may copy instead of encoding the object:
 * see src/dns/wire.ts. The object fields always describe the same message.
 */
export interface Msg {
  id: number;
  opcode: number;
  rcode: number;
  flags: Flags;
  question: Question[];
  answer: RR[];
  authority: RR[];
  additional: RR[];
  edns: Edns | null;
  wire?: PrebuiltWire;
  /** Seconds to subtract from every TTL when writing (a cache ages shared entries this way). */
  ttlDelta?: number;
}

/**
 * A message encoded once and reused for many replies. `bytes` holds header (ID 0, RD 0), the question
 * (lowercase name), and the sections, compressed, without an OPT record; counts in the header match.
 * The server copies it, patches ID, RD/CD, the question's letter case, and appends OPT.
 * `ttlOffsets` lists where each RR's TTL lives so a cache can age them on the copy.
 */
export interface PrebuiltWire {
  bytes: Uint8Array;
  /** Offset just past the question's QNAME (the end of the name's bytes). */
  qnameEnd: number;
  ttlOffsets: Uint32Array;
}

export function emptyFlags(): Flags {
  return { qr: false, aa: false, tc: false, rd: false, ra: false, ad: false, cd: false };
}

export function newMsg(id = 0): Msg {
  return { id, opcode: 0, rcode: 0, flags: emptyFlags(), question: [], answer: [], authority: [], additional: [], edns: null };
}
