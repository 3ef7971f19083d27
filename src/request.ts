import type { ParsedQuery } from './dns/query.ts';
import { type Msg, type Question, emptyFlags } from './dns/types.ts';
import type { MemoHit, MemoTerms, MemoValidity } from './server/memo.ts';

export type Proto = 'udp' | 'tcp';

/** 4 or 6 for a client address ("::ffff:10.0.0.1", as dual-stack sockets report IPv4 clients, is 4). */
export function addressFamily(a: string): 4 | 6 {
  return a.includes(':') && !(a.startsWith('::ffff:') && a.includes('.')) ? 6 : 4;
}

/**
 * One query as the chain sees it: the parsed question plus where it came from. Derived values
 * (lowercase name, reply size) are computed once, on first use.
 */
export class Request implements MemoTerms {
  readonly query: ParsedQuery;
  /** The query's bytes as received (for forwarding as is, with a new ID). */
  readonly raw: Uint8Array;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly proto: Proto;
  /** Listen address label, CoreDNS style: "dns://:53". */
  readonly server: string;
  /** The zone of the server block that routed this query (canonical). */
  zone = '.';
  /** The deepest plugin the chain reached: the one that answered (coredns_dns_responses_total's plugin label). */
  plugin = '';
  /** When the query arrived (performance.now()). */
  readonly received: number = performance.now();
  /** Per-request values plugins leave for others (metadata plugin style). Created on first use. */
  private meta: Map<string, unknown> | undefined;
  private lname: string | undefined;
  private maxSize: number;
  // Reply memo terms (src/server/memo.ts), set by memo-aware plugins through the methods below.
  memoOff = false;
  memoUntil = Infinity;
  memoDep: MemoValidity | undefined = undefined;
  memoHit: MemoHit | undefined = undefined;
  memoShuffle: Int32Array | undefined = undefined;
  memoAgeFrom = NaN;
  memoAgeDelta = 0;

  constructor(query: ParsedQuery, raw: Uint8Array, proto: Proto, remoteAddress: string, remotePort: number,
    server: string, localAddress = '', localPort = 0, maxUdpSize = 1232) {
    this.query = query;
    this.raw = raw;
    this.proto = proto;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    this.server = server;
    this.localAddress = localAddress;
    this.localPort = localPort;
    if (proto === 'tcp') this.maxSize = 65535;
    else if (!query.edns) this.maxSize = 512;
    else this.maxSize = Math.min(Math.max(query.edns.udpSize, 512), maxUdpSize);
  }

  get id(): number { return this.query.id; }
  /** The question name as sent, letter case kept. */
  get qname(): string { return this.query.qname; }
  /** The question name in lowercase, canonical. */
  get name(): string { return this.lname ??= this.query.lname ?? this.query.qname.toLowerCase(); }
  get qtype(): number { return this.query.qtype; }
  get qclass(): number { return this.query.qclass; }
  get do(): boolean { return this.query.edns?.do ?? false; }
  /** 4 or 6, from the client's address. */
  get family(): 4 | 6 { return addressFamily(this.remoteAddress); }
  /** The largest reply the client accepts on this transport. */
  get size(): number { return this.maxSize; }
  /** Lower the reply size limit (bufsize plugin). */
  limitSize(n: number): void { if (this.proto === 'udp') this.maxSize = Math.min(this.maxSize, Math.max(512, n)); }
  get question(): Question { return { name: this.query.qname, type: this.query.qtype, class: this.query.qclass }; }

  /** This reply must not be reused for another query (it depends on who asked, or on chance). */
  noMemo(): void { this.memoOff = true; }
  /** The reply may be reused until `t` (performance.now() milliseconds) at the latest. */
  memoValidUntil(t: number): void { if (t < this.memoUntil) this.memoUntil = t; }
  /** The reply may be reused only while `v` says valid (what it was built from is unchanged). */
  memoDependsOn(v: MemoValidity): void {
    const d = this.memoDep;
    this.memoDep = d === undefined ? v : { valid: () => d.valid() && v.valid() };
  }
  /** A reuse of this reply must also run `f` (the plugin's own counters, as if it had answered). */
  memoOnHit(f: MemoHit): void {
    const h = this.memoHit;
    this.memoHit = h === undefined ? f : (now) => { h(now); f(now); };
  }
  /**
   * The reply's TTLs were lowered by `delta` whole seconds of age since `from` (performance.now() ms);
   * a reuse lowers them by the age it has then (cache).
   */
  memoAging(from: number, delta: number): void {
    if (!Number.isNaN(this.memoAgeFrom)) { this.memoOff = true; return; } // aged twice: not expected
    this.memoAgeFrom = from;
    this.memoAgeDelta = delta;
  }
  /** Each reuse must shuffle these runs of equal-sized records: [start, size, count]* (loadbalance). */
  memoShuffleRuns(runs: Int32Array): void {
    if (this.memoShuffle !== undefined) { this.memoOff = true; return; } // two shufflers: not worth combining
    this.memoShuffle = runs;
  }

  getMeta<T>(key: string): T | undefined { return this.meta?.get(key) as T | undefined; }
  setMeta(key: string, value: unknown): void { (this.meta ??= new Map()).set(key, value); }

  /** A fresh reply to this query: ID, opcode, RD and CD copied, question echoed with the client's case. */
  reply(rcode = 0): Msg {
    const f = this.query.flags;
    const flags = emptyFlags();
    flags.qr = true;
    flags.rd = (f & 0x0100) !== 0;
    flags.cd = (f & 0x0010) !== 0;
    return {
      id: this.query.id, opcode: this.query.opcode, rcode, flags,
      question: [this.question], answer: [], authority: [], additional: [], edns: null,
    };
  }
}
