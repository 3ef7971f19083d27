// CLI flag parsing (the process-level behaviour is in test/e2e/).
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { UsageError, parseArgs } from './main.ts';

describe('parseArgs', () => {
  it('-workers: absent is 1 (single-threaded), a count, or auto = the usable cores', () => {
    expect(parseArgs([]).workers).toBe(1);
    expect(parseArgs(['-workers', '4']).workers).toBe(4);
    expect(parseArgs(['--workers=2', '-conf', 'x']).workers).toBe(2);
    expect(parseArgs(['-workers', 'auto']).workers).toBe(Math.max(1, availableParallelism()));
  });

  it('-workers rejects what is not a count', () => {
    for (const v of ['0', '-1', 'two', '1.5', '1000']) {
      expect(() => parseArgs(['-workers', v])).toThrow(UsageError);
    }
    expect(() => parseArgs(['-workers'])).toThrow('flag needs an argument: -workers');
  });
});
