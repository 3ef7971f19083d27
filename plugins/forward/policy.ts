// The order upstreams are tried in for one query (CoreDNS plugin/forward/policy.go).
import type { PolicyName } from './config.ts';

export interface Policy {
  readonly name: PolicyName;
  list<T>(items: readonly T[]): readonly T[];
}

/** A random permutation (selection only: not security relevant, Math.random is enough). */
export function shuffled<T>(items: readonly T[]): readonly T[] {
  if (items.length === 1) return items;
  if (items.length === 2) return Math.random() < 0.5 ? [items[1]!, items[0]!] : items;
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

export function makePolicy(name: PolicyName): Policy {
  switch (name) {
    case 'random':
      return { name, list: shuffled };
    case 'sequential':
      return { name, list: (items) => items };
    case 'round_robin': {
      // Like CoreDNS: the counter is bumped before use, so the first query starts at the second upstream;
      // the chosen one goes first, the others follow in configured order.
      let robin = 0;
      return {
        name,
        list<T>(items: readonly T[]): readonly T[] {
          robin = (robin + 1) >>> 0;
          const i = robin % items.length;
          if (i === 0) return items;
          return [items[i]!, ...items.slice(0, i), ...items.slice(i + 1)];
        },
      };
    }
  }
}
