// The running pods `pods verified` and autopath ask about, kept without an object per pod (issue 6:
// 100,000 Pods). What DNS reads of a pod is its namespace, its addresses and whether it shares its
// node's address (hostNetwork); its name is only how the API names it in updates and deletes.
//
// A pod is a slot: columns of typed arrays hold its namespace (an interned id), its first IPv4 address
// as an int32 and its flags; pods sharing a first IPv4 address (hostNetwork pods of one node, a pod
// and its not-yet-deleted predecessor) are chained through `next`. One Map per namespace finds a slot
// by name: its key is the pod name string the source handed over (already held by the API source's
// own cache, so it costs no second copy). Addresses beyond the first IPv4 (IPv6, dual stack) go to
// ordinary Maps: single-stack IPv4 clusters, the common case, get the compact path.

/** An address as a key: IPv4 as int32 (no allocation), IPv6 as its canonical text. */
export type IPKey = number | string;

const USED = 1;
const HOST_NETWORK = 2;
const HAS_V4 = 4;

/** The addresses answers changed for (the zone bumps their cells). */
export type OnAddress = (key: IPKey) => void;

export class PodTable {
  private readonly nsIds = new Map<string, number>();
  private readonly nsNames: string[] = [];
  /** Per namespace id: pod name → slot. */
  private readonly byName: Array<Map<string, number>> = [];
  private nsOf = new Int32Array(16);
  private v4 = new Int32Array(16);
  private flags = new Uint8Array(16);
  /** Next slot with the same first IPv4 address, -1 at the end; on a free slot, the next free slot. */
  private next = new Int32Array(16);
  /** Slots [0, top) have been handed out; free ones are chained from `free`. */
  private top = 0;
  private free = -1;
  private count = 0;
  /** First IPv4 address → first slot having it. */
  private readonly byV4 = new Map<number, number>();
  /** Slot → its addresses other than the first IPv4 (few pods have any). */
  private readonly extra = new Map<number, readonly IPKey[]>();
  /** Such an address → the slot(s) having it. */
  private readonly byOther = new Map<IPKey, number | number[]>();
  private readonly changed: OnAddress;

  /** Set while a replacement runs (beginReplace): slots of pods upserted since. */
  private mark: Uint8Array | undefined;

  constructor(changed: OnAddress) {
    this.changed = changed;
  }

  get size(): number { return this.count; }

  /**
   * Add or replace a pod. `ips` are address keys, deduplicated. Returns false when nothing changed.
   * During a replacement the pod's slot is marked as still present.
   */
  upsert(namespace: string, name: string, ips: readonly IPKey[], hostNetwork: boolean): boolean {
    const mark = this.mark;
    const ns = this.nsId(namespace);
    const names = this.byName[ns]!;
    const at = names.get(name);
    let first: number | undefined;
    const rest: IPKey[] = [];
    for (const ip of ips) {
      if (first === undefined && typeof ip === 'number') first = ip;
      else rest.push(ip);
    }
    const flags = USED | (hostNetwork ? HOST_NETWORK : 0) | (first !== undefined ? HAS_V4 : 0);
    if (at !== undefined) {
      if (mark && at < mark.length) mark[at] = 1;
      if (this.flags[at] === flags && (first === undefined || this.v4[at] === first) && sameKeys(this.extra.get(at), rest)) return false;
      this.unindex(at);
      this.index(at, ns, first, rest, flags);
      return true;
    }
    const slot = this.alloc();
    names.set(name, slot);
    this.count++;
    this.index(slot, ns, first, rest, flags);
    if (mark && slot < mark.length) mark[slot] = 1;
    return true;
  }

  /** Remove a pod; false when there was none. */
  remove(namespace: string, name: string): boolean {
    const ns = this.nsIds.get(namespace);
    const slot = ns === undefined ? undefined : this.byName[ns]!.get(name);
    if (ns === undefined || slot === undefined) return false;
    this.byName[ns]!.delete(name);
    this.release(slot);
    return true;
  }

  /**
   * Make the table exactly the pods upserted from now until `end()` (the initial list, a relist, fed
   * page by page): every upsert meanwhile marks its pod, and end() drops the pods nobody marked. Pods
   * added during the replacement get slots past the mark array and are kept.
   */
  beginReplace(): { end(): void } {
    const mark = new Uint8Array(this.top);
    this.mark = mark;
    return {
      end: () => {
        if (this.mark === mark) this.mark = undefined;
        for (const names of this.byName) {
          for (const [name, slot] of names) {
            if (slot < mark.length && mark[slot] === 0) { names.delete(name); this.release(slot); }
          }
        }
      },
    };
  }

  /** Make the table exactly the pods `each` feeds through the upsert it is given. */
  replaceAll(each: (upsert: (namespace: string, name: string, ips: readonly IPKey[], hostNetwork: boolean) => void) => void): void {
    const r = this.beginReplace();
    each((namespace, name, ips, hostNetwork) => { this.upsert(namespace, name, ips, hostNetwork); });
    r.end();
  }

  /** Is there a pod with this address in this namespace? */
  hasPod(key: IPKey, namespace: string): boolean {
    const ns = this.nsIds.get(namespace);
    if (ns === undefined) return false;
    let found = false;
    this.forEachAt(key, (slot) => { if (this.nsOf[slot] === ns) found = true; });
    return found;
  }

  /** Does any pod have this address? */
  has(key: IPKey): boolean {
    return typeof key === 'number' && this.byV4.has(key) || this.byOther.has(key);
  }

  /**
   * The namespace of the pods having this address: undefined when none has it, when they are in
   * several namespaces, or when one of them is a hostNetwork pod (its address is its node's).
   */
  namespaceOf(key: IPKey): string | undefined {
    let ns = -1;
    let certain = true;
    this.forEachAt(key, (slot) => {
      if ((this.flags[slot]! & HOST_NETWORK) !== 0 || (ns !== -1 && ns !== this.nsOf[slot])) certain = false;
      ns = this.nsOf[slot]!;
    });
    return certain && ns !== -1 ? this.nsNames[ns] : undefined;
  }

  // ------------------------------------------------------------------------------------ internals

  private forEachAt(key: IPKey, fn: (slot: number) => void): void {
    if (typeof key === 'number') {
      for (let s = this.byV4.get(key) ?? -1; s !== -1; s = this.next[s]!) fn(s);
    }
    const other = this.byOther.get(key);
    if (other === undefined) return;
    if (typeof other === 'number') fn(other);
    else for (const s of other) fn(s);
  }

  private nsId(namespace: string): number {
    let id = this.nsIds.get(namespace);
    if (id === undefined) {
      id = this.nsNames.length;
      this.nsIds.set(namespace, id);
      this.nsNames.push(namespace);
      this.byName.push(new Map());
    }
    return id;
  }

  private alloc(): number {
    if (this.free !== -1) {
      const slot = this.free;
      this.free = this.next[slot]!;
      return slot;
    }
    if (this.top === this.flags.length) this.grow();
    return this.top++;
  }

  private grow(): void {
    const cap = this.flags.length * 2;
    const nsOf = new Int32Array(cap); nsOf.set(this.nsOf); this.nsOf = nsOf;
    const v4 = new Int32Array(cap); v4.set(this.v4); this.v4 = v4;
    const flags = new Uint8Array(cap); flags.set(this.flags); this.flags = flags;
    const next = new Int32Array(cap); next.set(this.next); this.next = next;
  }

  private release(slot: number): void {
    this.unindex(slot);
    this.flags[slot] = 0;
    this.next[slot] = this.free;
    this.free = slot;
    this.count--;
  }

  private index(slot: number, ns: number, first: number | undefined, rest: IPKey[], flags: number): void {
    this.nsOf[slot] = ns;
    this.flags[slot] = flags;
    this.next[slot] = -1;
    if (first !== undefined) {
      this.v4[slot] = first;
      const head = this.byV4.get(first);
      if (head !== undefined) this.next[slot] = head;
      this.byV4.set(first, slot);
      this.changed(first);
    }
    if (rest.length > 0) {
      this.extra.set(slot, rest);
      for (const k of rest) {
        const have = this.byOther.get(k);
        if (have === undefined) this.byOther.set(k, slot);
        else if (typeof have === 'number') this.byOther.set(k, [have, slot]);
        else have.push(slot);
        this.changed(k);
      }
    }
  }

  private unindex(slot: number): void {
    if ((this.flags[slot]! & HAS_V4) !== 0) {
      const first = this.v4[slot]!;
      const head = this.byV4.get(first)!;
      if (head === slot) {
        if (this.next[slot] === -1) this.byV4.delete(first);
        else this.byV4.set(first, this.next[slot]!);
      } else {
        let s = head;
        while (this.next[s] !== slot) s = this.next[s]!;
        this.next[s] = this.next[slot]!;
      }
      this.next[slot] = -1;
      this.changed(first);
    }
    const rest = this.extra.get(slot);
    if (rest !== undefined) {
      this.extra.delete(slot);
      for (const k of rest) {
        const have = this.byOther.get(k);
        if (have === slot) this.byOther.delete(k);
        else if (Array.isArray(have)) {
          const left = have.filter((s) => s !== slot);
          this.byOther.set(k, left.length === 1 ? left[0]! : left);
        }
        this.changed(k);
      }
    }
  }
}

function sameKeys(a: readonly IPKey[] | undefined, b: readonly IPKey[]): boolean {
  if (a === undefined) return b.length === 0;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Dotted-quad IPv4 text → int32, or undefined when it is not one (the forms normalizeIP accepts:
 * four decimal parts of 1-3 digits, each at most 255). No allocation: this runs once per pod address.
 */
export function ipv4Word(s: string): number | undefined {
  let word = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (++digits > 3) return undefined;
      part = part * 10 + (c - 48);
    } else if (c === 46) {
      if (digits === 0 || part > 255 || ++dots > 3) return undefined;
      word = (word << 8) | part;
      part = 0;
      digits = 0;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0 || part > 255) return undefined;
  return (word << 8) | part;
}
