// The GC helpers: a memory-reducing full GC, and the pacer that collects during a bulk load.
import { describe, expect, it } from 'vitest';
import { fullGc, GcPacer } from './gc.ts';

describe('gc', () => {
  it('runs a full collection on demand without exposing gc to the process', () => {
    const hadGlobal = typeof (globalThis as { gc?: unknown }).gc === 'function';
    expect(fullGc()).toBeGreaterThanOrEqual(0);
    expect(fullGc()).toBeGreaterThanOrEqual(0);
    expect(typeof (globalThis as { gc?: unknown }).gc === 'function').toBe(hadGlobal);
  });

  it('GcPacer collects only once the heap grew by its step since the last collection', () => {
    const pacer = new GcPacer(8 * 2 ** 20);
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
});
