// Shared test helpers: build queries without a codec, write expectations in zone-file notation.
import { expect } from 'vitest';
import { parseQuery, type ParsedQuery } from '../src/dns/query.ts';
import { Request, type Proto } from '../src/request.ts';
import { type Msg, type RR, Class, rcodeName } from '../src/dns/types.ts';
import { parseRR, rrToString } from '../src/dns/text.ts';
import { memoryLogger } from '../src/log.ts';
import { Metrics } from '../src/metrics.ts';
import type { ErrorObserver, Handler, InstanceApi, Next, ResponseObserver, SetupEnv } from '../src/plugin.ts';
import { HttpMux } from '../src/server/http.ts';

export interface QueryOpts {
  id?: number;
  rd?: boolean;
  cd?: boolean;
  qclass?: number;
  opcode?: number;
  /** Add an OPT record. */
  edns?: { udpSize?: number; do?: boolean; version?: number; options?: Uint8Array };
}

function encodeName(name: string): number[] {
  const out: number[] = [];
  if (name !== '.' && name !== '') {
    for (const label of name.replace(/\.$/, '').split('.')) {
      const b = Buffer.from(label, 'latin1');
      out.push(b.length, ...b);
    }
  }
  out.push(0);
  return out;
}

/** Bytes of a query for `name`/`type`, built by hand (independent of the codec under test). */
export function queryBytes(name: string, type: number, o: QueryOpts = {}): Uint8Array {
  const id = o.id ?? 0x1234;
  let flags = (o.rd ?? true) ? 0x0100 : 0;
  if (o.cd) flags |= 0x0010;
  flags |= ((o.opcode ?? 0) & 0xf) << 11;
  const bytes = [id >> 8, id & 0xff, flags >> 8, flags & 0xff, 0, 1, 0, 0, 0, 0, 0, o.edns ? 1 : 0];
  bytes.push(...encodeName(name), type >> 8, type & 0xff, (o.qclass ?? Class.IN) >> 8, (o.qclass ?? Class.IN) & 0xff);
  if (o.edns) {
    const size = o.edns.udpSize ?? 1232;
    const opts = o.edns.options ?? new Uint8Array(0);
    bytes.push(0, 0, 41, size >> 8, size & 0xff, 0, o.edns.version ?? 0, o.edns.do ? 0x80 : 0, 0, opts.length >> 8, opts.length & 0xff, ...opts);
  }
  return Uint8Array.from(bytes);
}

export function makeRequest(name: string, type: number, o: QueryOpts & {
  proto?: Proto; remote?: string; remotePort?: number; zone?: string; server?: string;
} = {}): Request {
  const raw = queryBytes(name, type, o);
  const q = parseQuery(raw);
  if ('kind' in q) throw new Error(`makeRequest: ${q.reason}`);
  const req = new Request(q as ParsedQuery, raw, o.proto ?? 'udp', o.remote ?? '10.244.0.7', o.remotePort ?? 40000, o.server ?? 'dns://:53');
  req.zone = o.zone ?? '.';
  return req;
}

/** A zone-file line → RR. */
export const rr = parseRR;

export interface Case {
  rcode?: number;
  answer?: string[];
  ns?: string[];
  extra?: string[];
  aa?: boolean;
  tc?: boolean;
}

function norm(lines: string[]): string[] {
  return lines.map((l) => rrToString(parseRR(l)).toLowerCase()).sort();
}
function show(rrs: RR[]): string[] {
  return rrs.map((r) => rrToString(r).toLowerCase()).sort();
}

/** Compare a reply with an expectation, sections sorted, names case-insensitive (OPT ignored). */
export function sortAndCheck(msg: Msg, c: Case): void {
  if (c.rcode !== undefined) expect(rcodeName(msg.rcode)).toBe(rcodeName(c.rcode));
  if (c.answer) expect(show(msg.answer)).toEqual(norm(c.answer));
  if (c.ns) expect(show(msg.authority)).toEqual(norm(c.ns));
  if (c.extra) expect(show(msg.additional.filter((r) => r.type !== 41))).toEqual(norm(c.extra));
  if (c.aa !== undefined) expect(msg.flags.aa).toBe(c.aa);
  if (c.tc !== undefined) expect(msg.flags.tc).toBe(c.tc);
}

/** A terminal `next` that answers REFUSED (like the end of a CoreDNS chain with no zone). */
export const refuseNext: Next = (req) => req.reply(5);

/** Run a handler with a terminal next. */
export async function serve(h: Handler, req: Request, next: Next = refuseNext): Promise<Msg> {
  return await h.serveDNS(req, next);
}

/** A SetupEnv for unit-testing a plugin's setup without a server. Hooks are collected for the test to run. */
export function fakeEnv(over: Partial<SetupEnv> = {}) {
  const log = memoryLogger();
  const startup: Array<() => void | Promise<void>> = [];
  const shutdown: Array<() => void | Promise<void>> = [];
  const finalShutdown: Array<() => void | Promise<void>> = [];
  const ready = new Map<string, () => boolean>();
  const muxes = new Map<string, HttpMux>();
  const peers = new Map<string, Handler>();
  const responseObservers: ResponseObserver[] = [];
  const errorObservers: ErrorObserver[] = [];
  const serverMetrics = { on: false };
  const instance: InstanceApi & { reloads: number } = {
    reloads: 0,
    draining: false,
    query: async () => { throw new Error('fakeEnv: no chain'); },
    async reload() { this.reloads++; },
  };
  const env: SetupEnv = {
    block: { zones: ['.'], servers: ['dns://:53'], index: 0, plugins: [] },
    onResponse: (f) => { responseObservers.push(f); },
    onError: (f) => { errorObservers.push(f); },
    enableServerMetrics: () => { serverMetrics.on = true; },
    log,
    metrics: new Metrics(),
    http: (addr) => { let m = muxes.get(addr); if (!m) { m = new HttpMux(addr); muxes.set(addr, m); } return m; },
    onStartup: (f) => { startup.push(f); },
    onShutdown: (f) => { shutdown.push(f); },
    onFinalShutdown: (f) => { finalShutdown.push(f); },
    readiness: (p, f) => { ready.set(p, f); },
    readinessChecks: () => ready,
    peer: <T extends Handler>(name: string) => peers.get(name) as T | undefined,
    instance,
    corefile: { file: 'Corefile', files: ['Corefile'] },
    ...over,
  };
  return { env, log, startup, shutdown, finalShutdown, ready, muxes, peers, instance, responseObservers, errorObservers, serverMetrics };
}
