// The query pipeline shared by UDP and TCP: parse cheaply, route by zone, run the chain, write once.
import { parseQuery, type ParsedQuery } from '../dns/query.ts';
import { encode } from '../dns/encode.ts';
import { writePrebuilt } from '../dns/wire.ts';
import { type Msg, Class, Opcode, Rcode, emptyFlags } from '../dns/types.ts';
import { isSubdomain } from '../dns/name.ts';
import { Request, type Proto } from '../request.ts';
import { DnsError, type ErrorObserver, type Next, type ResponseObserver } from '../plugin.ts';
import type { Logger } from '../log.ts';
import type { ZoneStats } from './stats.ts';
import type { CounterChild } from '../fastmetrics.ts';
import type { ReplyMemo } from './memo.ts';

/** A server block as the pipeline runs it. */
export interface BlockRuntime {
  index: number;
  zones: string[];
  /** The compiled chain; null when the block has no handler plugins (queries get REFUSED). */
  chain: Next | null;
  responseObservers: ResponseObserver[];
  errorObservers: ErrorObserver[];
  /** Server metrics on? (prometheus plugin in the block) */
  metrics: boolean;
  /** May finished replies be reused (src/server/memo.ts)? Every handler memo-aware, no response observers. */
  memo: boolean;
}

interface Route { zone: string; block: BlockRuntime; stats: ZoneStats | null }

/** Longest-suffix routing of names to blocks on one listen address. */
export class Router {
  private readonly routes: Route[];
  constructor(routes: Route[]) {
    this.routes = [...routes].sort((a, b) => b.zone.length - a.zone.length);
  }
  match(name: string): Route | undefined {
    for (const r of this.routes) if (isSubdomain(name, r.zone)) return r;
    return undefined;
  }
  get blocks(): BlockRuntime[] { return [...new Set(this.routes.map((r) => r.block))]; }
}

export interface PipelineContext {
  /** "dns://:53" */
  server: string;
  router: Router;
  log: Logger;
  panics: CounterChild;
  /** The largest UDP reply we send, and advertise in our OPT (1232 by default). */
  maxUdpSize: number;
  /** Finished replies kept for reuse; null when off or no block may use it. */
  memo: ReplyMemo | null;
}

export type Send = (bytes: Uint8Array) => void;

/** A minimal reply for queries the chain never sees (FORMERR, NOTIMP, REFUSED, BADVERS). */
function bareReply(q: ParsedQuery | { id: number; opcode: number; flags: number }, rcode: number, withQuestion: boolean, maxUdp: number): Msg {
  const flags = emptyFlags();
  flags.qr = true;
  flags.rd = (q.flags & 0x0100) !== 0;
  const full = 'qname' in q ? q : undefined;
  return {
    id: q.id, opcode: q.opcode, rcode, flags,
    question: withQuestion && full ? [{ name: full.qname, type: full.qtype, class: full.qclass }] : [],
    answer: [], authority: [], additional: [],
    // BADVERS needs an OPT to carry the upper rcode bits; otherwise echo EDNS when the client used it.
    edns: full?.edns || rcode > 15 ? { udpSize: maxUdp, version: 0, do: full?.edns?.do ?? false, options: [] } : null,
  };
}

/** Did the last finalize() copy prebuilt wire (so the reply's TTLs are at msg.wire.ttlOffsets)? */
let finalizedFromWire = false;

/** Encode a chain's reply for this request: prebuilt bytes when possible, else compress + truncate. */
export function finalize(req: Request, msg: Msg, maxUdp: number): Uint8Array {
  const q = req.query;
  const opt = q.edns ? { udpSize: maxUdp, do: q.edns.do } : null;
  if (msg.wire && msg.rcode < 16) {
    const b = writePrebuilt(msg.wire, q, req.raw, opt, req.size, msg.ttlDelta ?? 0);
    if (b) { finalizedFromWire = true; return b; }
  }
  finalizedFromWire = false;
  let rcode = msg.rcode;
  if (rcode > 15 && !opt) rcode = Rcode.SERVFAIL; // an extended rcode cannot be sent without OPT
  const flags = { ...msg.flags, qr: true, rd: (q.flags & 0x0100) !== 0, cd: (q.flags & 0x0010) !== 0 };
  const out: Msg = {
    id: q.id, opcode: q.opcode, rcode, flags,
    question: [req.question],
    answer: ttlAged(msg.answer, msg.ttlDelta), authority: ttlAged(msg.authority, msg.ttlDelta),
    additional: ttlAged(msg.additional, msg.ttlDelta),
    edns: opt ? { udpSize: maxUdp, version: 0, do: opt.do, options: [] } : null,
  };
  return encode(out, req.size);
}

function ttlAged<T extends { ttl: number }>(rrs: T[], delta: number | undefined): T[] {
  if (!delta) return rrs;
  return rrs.map((r) => ({ ...r, ttl: Math.max(0, r.ttl - delta) }));
}

function writeOut(ctx: PipelineContext, req: Request, route: Route, msg: Msg, send: Send): void {
  let bytes: Uint8Array;
  try {
    bytes = finalize(req, msg, ctx.maxUdpSize);
  } catch (e) {
    // A reply we cannot encode is a bug in whoever built it: SERVFAIL, counted as a panic.
    ctx.panics.inc();
    ctx.log.error(`Recovered from error encoding reply for ${req.qname}: ${(e as Error).stack ?? String(e)}`);
    req.noMemo();
    msg = req.reply(Rcode.SERVFAIL);
    bytes = finalize(req, msg, ctx.maxUdpSize);
  }
  send(bytes);
  const b = route.block;
  const ms = performance.now() - req.received;
  if (route.stats) {
    route.stats.record(req.proto, req.family, req.qtype, req.do, req.raw.length, msg.rcode, req.plugin || '', bytes.length, ms / 1000);
  }
  // TTL offsets go with a reply copied from the prebuilt wire only: an encoded one (truncated for the
  // client's size) lays its records out elsewhere, and the memo then keeps no shuffle runs for it.
  if (b.memo && ctx.memo !== null && !req.memoOff) {
    ctx.memo.offer(req.raw, req.proto === 'tcp', req, performance.now(), bytes, route.stats, req.qtype, msg.rcode, req.plugin || '',
      finalizedFromWire ? msg.wire!.ttlOffsets : undefined);
  }
  if (b.responseObservers.length === 0) return;
  // Observers (log) see the flags the client got: a reply cut short for the client's UDP size has TC
  // on the wire only, not in the chain's message.
  const seen = (bytes[2]! & 0x02) !== 0 && !msg.flags.tc ? { ...msg, flags: { ...msg.flags, tc: true } } : msg;
  for (const o of b.responseObservers) {
    try { o(req, seen, bytes.length, ms); } catch (e) { ctx.log.error(`response observer failed: ${String(e)}`); }
  }
}

function fail(ctx: PipelineContext, req: Request, route: Route, err: unknown, send: Send): void {
  req.noMemo();
  const panic = !(err instanceof DnsError);
  if (panic) {
    ctx.panics.inc();
    ctx.log.error(`Recovered from panic in server: "${ctx.server}" ${req.qname} ${req.qtype}: ${(err as Error)?.stack ?? String(err)}`);
  }
  for (const o of route.block.errorObservers) {
    try { o(req, err, panic); } catch (e) { ctx.log.error(`error observer failed: ${String(e)}`); }
  }
  writeOut(ctx, req, route, req.reply(panic ? Rcode.SERVFAIL : (err as DnsError).rcode), send);
}

/**
 * The memo's reply for `raw`, or null (then run handle()). `t0`: when the query arrived
 * (performance.now()). After sending it, call memoAnswered for the server metrics.
 */
export function memoReply(ctx: PipelineContext, raw: Uint8Array, proto: Proto, t0: number): Uint8Array | null {
  return ctx.memo === null ? null : ctx.memo.lookup(raw, proto === 'tcp', t0);
}

/** Record a reply memoReply gave (coredns_dns_* metrics of the route it was first written through). */
export function memoAnswered(ctx: PipelineContext, proto: Proto, family: 4 | 6, reqSize: number, respSize: number, t0: number): void {
  const e = ctx.memo!.last!;
  if (e.stats !== null) e.stats.record(proto, family, e.qtype, e.doBit, reqSize, e.rcode, e.plugin, respSize, (performance.now() - t0) / 1000);
}

/**
 * Handle one datagram or TCP frame. Never throws: garbage is dropped or answered FORMERR; plugin
 * failures become SERVFAIL. Returns a promise only when the chain is asynchronous.
 */
export function handle(ctx: PipelineContext, raw: Uint8Array, proto: Proto, remote: string, port: number,
  send: Send, localAddress = '', localPort = 0): void | Promise<void> {
  const q = parseQuery(raw);
  if ('kind' in q) {
    if (q.kind === 'formerr') send(encode(bareReply(q, Rcode.FORMERR, false, ctx.maxUdpSize), 512));
    return;
  }
  if (q.opcode !== Opcode.QUERY) {
    send(encode(bareReply(q, Rcode.NOTIMP, true, ctx.maxUdpSize), 512));
    return;
  }
  if (q.edns && q.edns.version > 0) {
    send(encode(bareReply(q, Rcode.BADVERS, true, ctx.maxUdpSize), 512));
    return;
  }
  if (q.qclass !== Class.IN && q.qclass !== Class.CH) {
    send(encode(bareReply(q, Rcode.REFUSED, true, ctx.maxUdpSize), 512));
    return;
  }
  const req = new Request(q, raw, proto, remote, port, ctx.server, localAddress, localPort, ctx.maxUdpSize);
  const route = ctx.router.match(req.name);
  if (!route || !route.block.chain) {
    const m = req.reply(Rcode.REFUSED);
    if (route) writeOut(ctx, req, route, m, send);
    else send(finalize(req, m, ctx.maxUdpSize));
    return;
  }
  req.zone = route.zone;
  let r: Msg | Promise<Msg>;
  try {
    r = route.block.chain(req);
  } catch (e) {
    fail(ctx, req, route, e, send);
    return;
  }
  if (r instanceof Promise) {
    return r.then((m) => writeOut(ctx, req, route, m, send), (e: unknown) => fail(ctx, req, route, e, send));
  }
  writeOut(ctx, req, route, r, send);
}
