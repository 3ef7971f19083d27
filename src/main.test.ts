// CLI flag parsing (the process-level behaviour is in test/e2e/).
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { UsageError, parseArgs, usableCores } from './main.ts';

describe('parseArgs', () => {
  it('-workers: absent is 1 (single-threaded), a count, or auto = the usable cores', () => {
    expect(parseArgs([]).workers).toBe(1);
    expect(parseArgs(['-workers', '4']).workers).toBe(4);
    expect(parseArgs(['--workers=2', '-conf', 'x']).workers).toBe(2);
    expect(parseArgs(['-workers', 'auto']).workers).toBe(usableCores());
    expect(usableCores()).toBeLessThanOrEqual(Math.max(1, availableParallelism()));
  });

  it('-workers rejects what is not a count', () => {
    for (const v of ['0', '-1', 'two', '1.5', '1000']) {
      expect(() => parseArgs(['-workers', v])).toThrow(UsageError);
    }
    expect(() => parseArgs(['-workers'])).toThrow('flag needs an argument: -workers');
  });
});

describe('parseArgs -memo', () => {
  it('absent is the default (undefined), a count, or 0 to turn the reply memo off', () => {
    expect(parseArgs([]).memo).toBeUndefined();
    expect(parseArgs(['-memo', '0']).memo).toBe(0);
    expect(parseArgs(['--memo=4096']).memo).toBe(4096);
  });

  it('rejects what is not a count', () => {
    for (const v of ['-1', 'lots', '1.5', String((1 << 20) + 1)]) {
      expect(() => parseArgs(['-memo', v])).toThrow(UsageError);
    }
    expect(() => parseArgs(['-memo'])).toThrow('flag needs an argument: -memo');
  });
});

describe('usableCores', () => {
  const files = (m: Record<string, string>) => (p: string) => {
    if (!(p in m)) throw new Error(`ENOENT: ${p}`);
    return m[p]!;
  };
  const cpus = Math.max(1, availableParallelism());

  it('is capped by a cgroup v2 CPU quota, rounded up', () => {
    expect(usableCores(files({ '/sys/fs/cgroup/cpu.max': '100000 100000\n' }))).toBe(1);
    expect(usableCores(files({ '/sys/fs/cgroup/cpu.max': '50000 100000\n' }))).toBe(1);
    expect(usableCores(files({ '/sys/fs/cgroup/cpu.max': '150000 100000\n' }))).toBe(Math.min(cpus, 2));
    expect(usableCores(files({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' }))).toBe(cpus);
  });

  it('reads cgroup v1, and uses every CPU without a quota', () => {
    expect(usableCores(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '100000\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' }))).toBe(1);
    expect(usableCores(files({ '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n' }))).toBe(cpus);
    expect(usableCores(files({}))).toBe(cpus);
  });
});
