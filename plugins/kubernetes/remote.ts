// The kubernetes plugin with workers (`-workers N`): the zone is held once, in the main thread; each
// worker keeps a bounded cache of finished replies (Msg + prebuilt wire) and asks main for the ones
// it lacks. A cached reply carries a stamp (see slots.ts): the shared counters of the zone cells it
// was built from, so a worker revalidates a hit with a few atomic loads and never copies the zone.
import { DnsError, type LinkService } from '../../src/plugin.ts';
import { type Msg, Rcode } from '../../src/dns/types.ts';
import type { KubernetesConfig } from './config.ts';
import { type KubernetesHandler, type ZoneAnswer, ZoneHandler, freezeMsg } from './kubernetes.ts';
import { type SlotReader, type SlotTable, type Stamp } from './slots.ts';
import type { Cell } from './zone.ts';

/** Worker → main: replies for these names and types (a batch), or the namespace of a pod address. */
export type ZoneCall = { op: 'replies'; names: string[]; types: number[] } | { op: 'ns'; ip: string };

/**
 * Main → worker: a batch of replies, packed to be cheap to clone (a structured clone of nested
 * objects and many small typed arrays costs tens of µs; a string and two arrays do not).
 * `json`: the messages without `wire` (kubernetes replies hold only strings, numbers and plain
 * objects). `ints`, per reply: wire length (-1: none), then qnameEnd, the TTL offset count and the
 * offsets; then the stamp's length and the stamp. `wire`: the prebuilt bytes, one after the other.
 */
export interface RepliesAnswer { json: string; wire: Uint8Array; ints: Int32Array }
export interface NamespaceAnswer { ns: string | null; stamp: Stamp }

/** Main side: answer workers from the local handler (and its cache), stamping the cells read. */
export function zoneService(handler: KubernetesHandler, table: SlotTable): LinkService {
  return {
    shared: table.buffer,
    handle(body: unknown): RepliesAnswer | NamespaceAnswer {
      const c = body as ZoneCall;
      if (c?.op === 'replies' && Array.isArray(c.names) && Array.isArray(c.types) && c.names.length === c.types.length) {
        return packReplies(handler, table, c.names, c.types);
      }
      if (c?.op === 'ns' && typeof c.ip === 'string') {
        const deps: Cell[] = [];
        const ns = handler.zone.namespaceOfIP(c.ip, deps);
        return { ns: ns ?? null, stamp: table.stamp([...new Set(deps)]) };
      }
      throw new Error('kubernetes: unknown call');
    },
  };
}

function packReplies(handler: KubernetesHandler, table: SlotTable, names: string[], types: number[]): RepliesAnswer {
  const msgs: Omit<Msg, 'wire'>[] = [];
  const ints: number[] = [];
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let i = 0; i < names.length; i++) {
    const e = handler.entry(String(names[i]), Number(types[i]));
    const m = e.msg;
    // Spelled out rather than `{ wire, ...rest }`: an object rest copy was the costliest line here.
    msgs.push({ id: m.id, opcode: m.opcode, rcode: m.rcode, flags: m.flags, question: m.question, answer: m.answer, authority: m.authority, additional: m.additional, edns: m.edns });
    const wire = m.wire;
    if (wire) {
      const offsets = wire.ttlOffsets;
      ints.push(wire.bytes.length, wire.qnameEnd, offsets.length);
      for (let k = 0; k < offsets.length; k++) ints.push(offsets[k]!);
      chunks.push(wire.bytes);
      size += wire.bytes.length;
    } else {
      ints.push(-1);
    }
    table.stampInto(e.cells, ints);
  }
  const wire = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { wire.set(c, at); at += c.length; }
  return { json: JSON.stringify(msgs), wire, ints: new Int32Array(ints) };
}

/** Worker side: unpack a batch into messages (with their wire) and stamps. */
export function unpackReplies(a: RepliesAnswer): Array<{ msg: Msg; stamp: Stamp }> {
  const msgs = JSON.parse(a.json) as Msg[];
  const { ints, wire } = a;
  const out: Array<{ msg: Msg; stamp: Stamp }> = [];
  let p = 0;
  let w = 0;
  for (const msg of msgs) {
    const len = ints[p++]!;
    if (len >= 0) {
      const qnameEnd = ints[p++]!;
      const n = ints[p++]!;
      msg.wire = { bytes: wire.slice(w, w + len), qnameEnd, ttlOffsets: Uint32Array.from(ints.subarray(p, p + n)) };
      p += n;
      w += len;
    }
    const sl = ints[p++]!;
    out.push({ msg, stamp: ints.slice(p, p + sl) });
    p += sl;
  }
  return out;
}

export interface RemoteZoneOptions {
  /** Most replies kept per worker; past it the cache starts over. Default 10,000. */
  cacheSize?: number;
  /** Freeze replies (default: outside production), as the local handler does. */
  freeze?: boolean;
  /** Most names asked in one call. Default 256. */
  batchSize?: number;
  /**
   * Most names waiting for main at once (default 4096, 16 full batches). A miss beyond it is answered
   * SERVFAIL at once (`onShed`): under a flood of distinct names main falls behind, and without a
   * bound the waiting queries and their messages pile up in memory until they time out.
   */
  maxWaiting?: number;
  onShed?: () => void;
}

interface Stamped<T> { value: T; stamp: Stamp }
interface Waiting { key: string; name: string; qtype: number; resolve: (a: RemoteAnswer) => void; reject: (e: unknown) => void }

/** A reply from main with its stamp: valid while the zone cells it read have not moved. */
class RemoteAnswer implements ZoneAnswer {
  readonly msg: Msg;
  readonly validity: SlotStamp;
  constructor(msg: Msg, stamp: Stamp, reader: SlotReader) {
    this.msg = msg;
    this.validity = new SlotStamp(stamp, reader);
  }
  valid(): boolean { return this.validity.valid(); }
}

/** A reply's stamp as a worker checks it: current while the shared slots it names have not moved. */
class SlotStamp {
  readonly stamp: Stamp;
  private readonly reader: SlotReader;
  constructor(stamp: Stamp, reader: SlotReader) {
    this.stamp = stamp;
    this.reader = reader;
  }
  valid(): boolean { return this.reader.valid(this.stamp); }
}

/**
 * Worker side: replies from main, cached while their stamps hold. Misses wait for the end of the
 * event loop turn and go to main together: under load one message carries many names, so the cost
 * of crossing threads is paid per batch, not per query.
 */
export class RemoteZone {
  private readonly reader: SlotReader;
  private readonly call: (body: ZoneCall) => Promise<unknown>;
  private readonly cacheSize: number;
  private readonly freeze: boolean;
  private readonly batchSize: number;
  private readonly maxWaiting: number;
  private readonly onShed: (() => void) | undefined;
  private readonly shedError = new DnsError(Rcode.SERVFAIL, 'kubernetes', 'too many names waiting for the main thread (overload)');
  /** qtype → lowercase name → reply (nested, so a hit builds no key string), as the local handler. */
  private readonly cache = new Map<number, Map<string, RemoteAnswer>>();
  private cachedCount = 0;
  /** One question per key at a time: a burst of misses for the same name waits for the same answer. */
  private readonly pending = new Map<string, Promise<RemoteAnswer>>();
  private batch: Waiting[] = [];
  private flushing: NodeJS.Immediate | undefined;
  private readonly namespaces = new Map<string, Stamped<string | null>>();
  private readonly nsPending = new Set<string>();
  /** Calls made to main (tests, debugging). */
  calls = 0;

  constructor(reader: SlotReader, call: (body: ZoneCall) => Promise<unknown>, opts: RemoteZoneOptions = {}) {
    this.reader = reader;
    this.call = call;
    this.cacheSize = opts.cacheSize ?? 10_000;
    this.freeze = opts.freeze ?? process.env.NODE_ENV !== 'production';
    this.batchSize = opts.batchSize ?? 256;
    this.maxWaiting = opts.maxWaiting ?? 4096;
    this.onShed = opts.onShed;
  }

  get synced(): boolean { return this.reader.synced(); }
  get cached(): number { return this.cachedCount; }

  reply(name: string, qtype: number): Msg | Promise<Msg> {
    const a = this.answer(name, qtype);
    return a instanceof Promise ? a.then((x) => x.msg) : a.msg;
  }

  answer(name: string, qtype: number): RemoteAnswer | Promise<RemoteAnswer> {
    const hit = this.cache.get(qtype)?.get(name);
    if (hit && hit.valid()) return hit;
    const key = `${qtype} ${name}`;
    let p = this.pending.get(key);
    if (!p) {
      if (this.pending.size >= this.maxWaiting) { this.onShed?.(); throw this.shedError; }
      const { promise, resolve, reject } = Promise.withResolvers<RemoteAnswer>();
      p = promise;
      this.pending.set(key, p);
      this.batch.push({ key, name, qtype, resolve, reject });
      if (this.batch.length >= this.batchSize) this.flush();
      else this.flushing ??= setImmediate(() => this.flush());
    }
    return p;
  }

  /**
   * The namespace of the pod with this address, when known here. A miss answers undefined at once
   * (autopath then leaves that query alone, which is always correct) and asks main in the background.
   */
  namespaceOfIP(ip: string): string | undefined {
    const hit = this.namespaces.get(ip);
    if (hit && this.reader.valid(hit.stamp)) return hit.value ?? undefined;
    if (!this.nsPending.has(ip)) {
      this.nsPending.add(ip);
      this.calls++;
      this.call({ op: 'ns', ip }).then((a) => {
        const { ns, stamp } = a as NamespaceAnswer;
        if (this.namespaces.size >= this.cacheSize) this.namespaces.clear();
        this.namespaces.set(ip, { value: ns, stamp });
      }, () => undefined).finally(() => this.nsPending.delete(ip));
    }
    return undefined;
  }

  private remember(name: string, qtype: number, e: RemoteAnswer): void {
    if (this.cachedCount >= this.cacheSize) { this.cache.clear(); this.cachedCount = 0; }
    let byName = this.cache.get(qtype);
    if (!byName) { byName = new Map(); this.cache.set(qtype, byName); }
    if (!byName.has(name)) this.cachedCount++;
    byName.set(name, e);
  }

  private flush(): void {
    if (this.flushing) { clearImmediate(this.flushing); this.flushing = undefined; }
    const batch = this.batch;
    if (batch.length === 0) return;
    this.batch = [];
    this.calls++;
    this.call({ op: 'replies', names: batch.map((w) => w.name), types: batch.map((w) => w.qtype) }).then((a) => {
      const replies = unpackReplies(a as RepliesAnswer);
      batch.forEach((w, i) => {
        const r = replies[i];
        this.pending.delete(w.key);
        if (!r) { w.reject(new DnsError(Rcode.SERVFAIL, 'kubernetes', 'short answer from the main thread')); return; }
        if (this.freeze) freezeMsg(r.msg);
        const a = new RemoteAnswer(r.msg, r.stamp, this.reader);
        this.remember(w.name, w.qtype, a);
        w.resolve(a);
      });
    }, (e: unknown) => {
      for (const w of batch) {
        this.pending.delete(w.key);
        w.reject(new DnsError(Rcode.SERVFAIL, 'kubernetes', e));
      }
    });
  }
}

/** The kubernetes handler of a worker: same answers as the local one, from RemoteZone. */
export class RemoteKubernetesHandler extends ZoneHandler {
  readonly remote: RemoteZone;
  constructor(cfg: KubernetesConfig, remote: RemoteZone) {
    super(cfg, () => remote.synced);
    this.remote = remote;
  }
  answer(name: string, qtype: number): ZoneAnswer | Promise<ZoneAnswer> { return this.remote.answer(name, qtype); }
  namespaceOfIP(ip: string): string | undefined { return this.remote.namespaceOfIP(ip); }
  get cached(): number { return this.remote.cached; }
}
