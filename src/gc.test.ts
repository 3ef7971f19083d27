// The GC helpers: a memory-reducing full GC, and the pacer that collects during a bulk load.
import { describe, expect, it } from 'vitest';
import { disablePretenuring, fullGc, GcPacer, oldGenerationBytes } from './gc.ts';

describe('gc', () => {
  it('runs a full collection on demand without exposing gc to the process', () => {
    const hadGlobal = typeof (globalThis as { gc?: unknown }).gc === 'function';
    expect(fullGc()).toBeGreaterThanOrEqual(0);
    expect(fullGc()).toBeGreaterThanOrEqual(0);
    expect(typeof (globalThis as { gc?: unknown }).gc === 'function').toBe(hadGlobal);
  });

  it('GcPacer collects only once the heap grew by its step since the last collection', () => {
    const pacer = new GcPacer({ stepBytes: 8 * 2 ** 20 });
    expect(pacer.tick()).toBe(0); // the first tick sets the base
    const keep: number[][] = [];
    // ~16 MiB of live arrays: past the step, so the next tick collects (and keeps what is live).
    for (let i = 0; i < 64; i++) keep.push(new Array<number>(32 * 1024).fill(i + 0.5));
    expect(pacer.tick()).toBeGreaterThan(0);
    expect(pacer.tick()).toBe(0); // the base moved to what the collection left
    expect(keep.length).toBe(64);
    pacer.reset();
    expect(pacer.tick()).toBe(0);
  });

  it('GcPacer decides on its measure: collects at base + step, then measures again for the new base', () => {
    let bytes = 100;
    const collections: number[] = [];
    const pacer = new GcPacer({
      stepBytes: 10,
      measure: () => bytes,
      collect: () => { collections.push(bytes); bytes = 105; return 1; }, // the collection freed some
    });
    expect(pacer.tick()).toBe(0); // base 100
    bytes = 109;
    expect(pacer.tick()).toBe(0); // below 110
    bytes = 110;
    expect(pacer.tick()).toBe(1); // at the step: collect; the base becomes 105
    expect(collections).toEqual([110]);
    bytes = 114;
    expect(pacer.tick()).toBe(0);
    bytes = 115;
    expect(pacer.tick()).toBe(1);
    expect(collections).toEqual([110, 115]);
    pacer.reset(); // the next load starts from wherever the heap is then
    bytes = 500;
    expect(pacer.tick()).toBe(0);
    expect(collections).toHaveLength(2);
  });

  it('GcPacer reports -1 and keeps its base when collecting is not allowed', () => {
    let bytes = 0;
    const pacer = new GcPacer({ stepBytes: 10, measure: () => bytes, collect: () => -1 });
    pacer.tick();
    bytes = 50;
    expect(pacer.tick()).toBe(-1);
    expect(pacer.tick()).toBe(-1);
  });

  it('oldGenerationBytes counts external memory (ArrayBuffers)', () => {
    const before = oldGenerationBytes();
    const buf = new ArrayBuffer(8 * 2 ** 20);
    expect(oldGenerationBytes() - before).toBeGreaterThanOrEqual(8 * 2 ** 20);
    expect(buf.byteLength).toBe(8 * 2 ** 20);
  });

  it('disablePretenuring is accepted by the runtime', () => {
    expect(disablePretenuring()).toBe(true);
  });
});
