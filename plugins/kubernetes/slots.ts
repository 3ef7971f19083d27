// Change counters in shared memory, for workers (`-workers N`). The zone lives once, in the main
// thread; a worker keeps replies it got from main and must know when one went stale without asking.
// So the zone cells a reply was built from (a Service, a namespace, an address, the global cell) are
// mirrored into slots of an Int32Array over a SharedArrayBuffer: main gives a cell a slot the first
// time a reply for a worker depends on it and bumps that slot whenever the cell moves; a worker checks
// its reply with one Atomics.load per dependency.
//
// Slot values only ever go up, so a recorded (slot, value) pair can never become valid again once the
// slot moved. When every slot is taken, main starts a new epoch: the epoch word goes up (invalidating
// every reply in every worker at once), all cells lose their slots and assignment starts over. Slots
// are handed out only for cells that workers' replies depend on, so this is rare.
import type { Cell } from './zone.ts';

/** Slot 0: epoch. Slot 1: the zone's source has synced (0/1). */
const EPOCH = 0;
const SYNCED = 1;
export const FIRST_SLOT = 4;

/**
 * What a worker needs to check a reply, flat (one small allocation per reply): the epoch, then each
 * dependency's slot and value: [epoch, slot0, value0, slot1, value1, ...].
 */
export type Stamp = Int32Array;

/** Main side: the only writer. */
export class SlotTable {
  readonly buffer: SharedArrayBuffer;
  private readonly view: Int32Array;
  private next = FIRST_SLOT;
  /** Cells holding a slot, to take them back at the next epoch. */
  private assigned: Cell[] = [];

  constructor(capacity = 1 << 16) {
    if (capacity <= FIRST_SLOT) throw new Error('slot table too small');
    this.buffer = new SharedArrayBuffer(capacity * 4);
    this.view = new Int32Array(this.buffer);
  }

  get capacity(): number { return this.view.length; }
  get used(): number { return this.next - FIRST_SLOT; }
  get epoch(): number { return Atomics.load(this.view, EPOCH); }

  setSynced(on: boolean): void { Atomics.store(this.view, SYNCED, on ? 1 : 0); }

  /** The cell moved: replies depending on it are stale. Called by the zone for cells with a slot. */
  bump(slot: number): void { Atomics.add(this.view, slot, 1); }

  /** The stamp of a reply that read these cells (deduplicated), assigning slots as needed. */
  stamp(cells: readonly Cell[]): Stamp {
    const out: number[] = [];
    this.stampInto(cells, out);
    return Int32Array.from(out.slice(1));
  }

  /** Append a stamp to `out`, preceded by its length (for batches packed in one Int32Array). */
  stampInto(cells: readonly Cell[], out: number[]): void {
    let missing = 0;
    for (const c of cells) if (c.slot < 0) missing++;
    if (this.next + missing > this.view.length) this.newEpoch();
    out.push(1 + 2 * cells.length, Atomics.load(this.view, EPOCH));
    for (const c of cells) {
      if (c.slot < 0) {
        c.slot = this.next++;
        this.assigned.push(c);
      }
      out.push(c.slot, Atomics.load(this.view, c.slot));
    }
  }

  /** Take every slot back; every stamp handed out so far becomes invalid. */
  newEpoch(): void {
    for (const c of this.assigned) c.slot = -1;
    this.assigned = [];
    this.next = FIRST_SLOT;
    Atomics.add(this.view, EPOCH, 1);
  }
}

/** Worker side: reads only. */
export class SlotReader {
  private readonly view: Int32Array;
  constructor(buffer: SharedArrayBuffer) { this.view = new Int32Array(buffer); }

  synced(): boolean { return Atomics.load(this.view, SYNCED) === 1; }

  /** Does nothing the stamped reply depended on look different now? */
  valid(s: Stamp): boolean {
    const v = this.view;
    if (Atomics.load(v, EPOCH) !== s[0]) return false;
    for (let i = 1; i < s.length; i += 2) if (Atomics.load(v, s[i]!) !== s[i + 1]) return false;
    return true;
  }
}
