// The kubernetes plugin with workers (`-workers N`): the zone is held once, in the main thread; each
// worker keeps a bounded cache of finished replies (Msg + prebuilt wire) and asks main for the ones
// it lacks. A cached reply carries a stamp (see slots.ts): the shared counters of the zone cells it
// was built from, so a worker revalidates a hit with a few atomic loads and never copies the zone.
import { DnsError, type LinkService } from '../../src/plugin.ts';
import { type Msg, Rcode } from '../../src/dns/types.ts';
import type { KubernetesConfig } from './config.ts';
import { type KubernetesHandler, ZoneHandler, freezeMsg } from './kubernetes.ts';
import { type SlotReader, type SlotTable, type Stamp } from './slots.ts';
import type { Cell } from './zone.ts';

/** Worker → main. */
export type ZoneCall = { op: 'reply'; name: string; qtype: number } | { op: 'ns'; ip: string };
/** Main → worker. */
export interface ReplyAnswer { msg: Msg; stamp: Stamp }
export interface NamespaceAnswer { ns: string | null; stamp: Stamp }

/** Main side: answer workers from the local handler (and its cache), stamping the cells read. */
export function zoneService(handler: KubernetesHandler, table: SlotTable): LinkService {
  return {
    shared: table.buffer,
    handle(body: unknown): ReplyAnswer | NamespaceAnswer {
      const c = body as ZoneCall;
      if (c?.op === 'reply' && typeof c.name === 'string' && typeof c.qtype === 'number') {
        const e = handler.entry(c.name, c.qtype);
        return { msg: e.msg, stamp: table.stamp(e.cells) };
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

export interface RemoteZoneOptions {
  /** Most replies kept per worker; past it the cache starts over. Default 10,000. */
  cacheSize?: number;
  /** Freeze replies (default: outside production), as the local handler does. */
  freeze?: boolean;
}

interface Stamped<T> { value: T; stamp: Stamp }

/** Worker side: replies from main, cached while their stamps hold. */
export class RemoteZone {
  private readonly reader: SlotReader;
  private readonly call: (body: ZoneCall) => Promise<unknown>;
  private readonly cacheSize: number;
  private readonly freeze: boolean;
  private readonly cache = new Map<string, Stamped<Msg>>();
  /** One call per key at a time: a burst of misses for the same name waits for the same answer. */
  private readonly pending = new Map<string, Promise<Msg>>();
  private readonly namespaces = new Map<string, Stamped<string | null>>();
  private readonly nsPending = new Set<string>();
  /** Calls made to main (tests, debugging). */
  calls = 0;

  constructor(reader: SlotReader, call: (body: ZoneCall) => Promise<unknown>, opts: RemoteZoneOptions = {}) {
    this.reader = reader;
    this.call = call;
    this.cacheSize = opts.cacheSize ?? 10_000;
    this.freeze = opts.freeze ?? process.env.NODE_ENV !== 'production';
  }

  get synced(): boolean { return this.reader.synced(); }
  get cached(): number { return this.cache.size; }

  reply(name: string, qtype: number): Msg | Promise<Msg> {
    const key = `${qtype} ${name}`;
    const hit = this.cache.get(key);
    if (hit && this.reader.valid(hit.stamp)) return hit.value;
    let p = this.pending.get(key);
    if (!p) {
      p = this.fetch(key, name, qtype);
      this.pending.set(key, p);
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

  private async fetch(key: string, name: string, qtype: number): Promise<Msg> {
    this.calls++;
    try {
      const { msg, stamp } = await this.call({ op: 'reply', name, qtype }) as ReplyAnswer;
      if (this.freeze) freezeMsg(msg);
      if (this.cache.size >= this.cacheSize) this.cache.clear();
      this.cache.set(key, { value: msg, stamp });
      return msg;
    } catch (e) {
      throw new DnsError(Rcode.SERVFAIL, 'kubernetes', e);
    } finally {
      this.pending.delete(key);
    }
  }
}

/** The kubernetes handler of a worker: same answers as the local one, from RemoteZone. */
export class RemoteKubernetesHandler extends ZoneHandler {
  readonly remote: RemoteZone;
  constructor(cfg: KubernetesConfig, remote: RemoteZone) {
    super(cfg, () => remote.synced);
    this.remote = remote;
  }
  reply(name: string, qtype: number): Msg | Promise<Msg> { return this.remote.reply(name, qtype); }
  namespaceOfIP(ip: string): string | undefined { return this.remote.namespaceOfIP(ip); }
  get cached(): number { return this.remote.cached; }
}
