// The shared change counters: slots assigned on first use, bumped by the zone, checked by readers.
import { describe, expect, it } from 'vitest';
import { FIRST_SLOT, SlotReader, SlotTable } from './slots.ts';
import { KubeZone, newCell } from './zone.ts';

describe('SlotTable / SlotReader', () => {
  it('assigns a slot once per cell and stamps current values', () => {
    const t = new SlotTable(16);
    const a = newCell();
    const b = newCell();
    const s1 = t.stamp([a, b]);
    expect([...s1]).toEqual([0, FIRST_SLOT, 0, FIRST_SLOT + 1, 0]); // epoch, then slot/value pairs
    expect(a.slot).toBe(FIRST_SLOT);
    t.bump(b.slot);
    const s2 = t.stamp([b]);
    expect([...s2]).toEqual([0, FIRST_SLOT + 1, 1]);
    expect(t.used).toBe(2);
  });

  it('a bump invalidates stamps that read the cell, and only those', () => {
    const t = new SlotTable(16);
    const r = new SlotReader(t.buffer);
    const a = newCell();
    const b = newCell();
    const onA = t.stamp([a]);
    const onB = t.stamp([b]);
    const onBoth = t.stamp([a, b]);
    expect(r.valid(onA) && r.valid(onB) && r.valid(onBoth)).toBe(true);
    t.bump(b.slot);
    expect(r.valid(onA)).toBe(true);
    expect(r.valid(onB)).toBe(false);
    expect(r.valid(onBoth)).toBe(false);
    // A fresh stamp after the change is valid again; the old one never comes back.
    expect(r.valid(t.stamp([b]))).toBe(true);
    expect(r.valid(onB)).toBe(false);
  });

  it('starts a new epoch when full: every old stamp goes stale, slots are reused', () => {
    const t = new SlotTable(FIRST_SLOT + 2);
    const r = new SlotReader(t.buffer);
    const [a, b, c] = [newCell(), newCell(), newCell()];
    const old = t.stamp([a, b]);
    expect(t.epoch).toBe(0);
    const s = t.stamp([c]);
    expect(t.epoch).toBe(1);
    expect(a.slot).toBe(-1);
    expect(c.slot).toBe(FIRST_SLOT);
    expect(r.valid(old)).toBe(false);
    expect(r.valid(s)).toBe(true);
  });

  it('carries the synced flag', () => {
    const t = new SlotTable(8);
    const r = new SlotReader(t.buffer);
    expect(r.synced()).toBe(false);
    t.setSynced(true);
    expect(r.synced()).toBe(true);
  });

  it('is bumped by the zone for cells with a slot (a Service, the global cell)', () => {
    const t = new SlotTable(64);
    const r = new SlotReader(t.buffer);
    const z = new KubeZone({ implicitNamespaces: true });
    z.shareChanges(t);
    z.upsertService({ namespace: 'ns', name: 'web', type: 'ClusterIP', clusterIPs: ['10.0.0.1'], externalName: '', ports: [], publishNotReadyAddresses: false });
    z.upsertService({ namespace: 'ns', name: 'db', type: 'ClusterIP', clusterIPs: ['10.0.0.2'], externalName: '', ports: [], publishNotReadyAddresses: false });
    const webDeps: ReturnType<typeof newCell>[] = [];
    z.service('ns', 'web', webDeps);
    const web = t.stamp(webDeps);
    const global = t.stamp([z.global]);
    z.upsertService({ namespace: 'ns', name: 'db', type: 'ClusterIP', clusterIPs: ['10.0.0.3'], externalName: '', ports: [], publishNotReadyAddresses: false });
    expect(r.valid(web)).toBe(true); // db changed, not web
    expect(r.valid(global)).toBe(false); // every change moves the global cell
    z.deleteService('ns', 'web');
    expect(r.valid(web)).toBe(false);
  });
});
