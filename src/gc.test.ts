import { expect, it } from 'vitest';
import { fullGc } from './gc.ts';

it('runs a full collection on demand without exposing gc to the process', () => {
  const hadGlobal = typeof (globalThis as { gc?: unknown }).gc === 'function';
  expect(fullGc()).toBeGreaterThanOrEqual(0);
  expect(fullGc()).toBeGreaterThanOrEqual(0);
  expect(typeof (globalThis as { gc?: unknown }).gc === 'function').toBe(hadGlobal);
});
