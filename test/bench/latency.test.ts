import { describe, expect, it } from 'vitest';
import { stallsOf, withoutPlugins } from './latency.ts';

describe('latency bench: stalls', () => {
  it('counts slow queries and groups the ones over 0.3 ms into stalls by their slowest', () => {
    const fast = (n: number) => Array<number>(n).fill(0.05);
    const run = [
      ...fast(50), 0.2, ...fast(50), // slow, but no stall
      0.5, 0.4, 0.35, ...fast(50), // one short stall
      1.5, 1.2, ...fast(5), 0.9, 0.4, ...fast(50), // one stall (5 fast ones inside), its slowest 1.5 ms
      3.1, 2.8, 2.5, ...fast(11), 0.6, // a long stall, then a separate short one 11 queries later
    ];
    expect(stallsOf(run)).toEqual({ slow: 1 + 3 + 4 + 3 + 1, stalls: [2, 1, 1] });
    expect(stallsOf(fast(100))).toEqual({ slow: 0, stalls: [0, 0, 0] });
  });
});

describe('latency bench: Corefile variants', () => {
  it('drops a plugin\'s line and its block', () => {
    const corefile = '.:53 {\n    errors\n    health {\n       lameduck 5s\n    }\n    ready\n    cache 30\n}\n';
    expect(withoutPlugins(corefile, ['health', 'cache'])).toBe('.:53 {\n    errors\n    ready\n}\n');
  });
});
