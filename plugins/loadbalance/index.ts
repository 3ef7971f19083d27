import { type Msg, Rcode, Type } from '../../src/dns/types.ts';
import { definePlugin, type Handler } from '../../src/plugin.ts';
import { balance, parseCidr, shuffleRuns, type Cidr } from './loadbalance.ts';
import type { Request } from '../../src/request.ts';

export { balance, permuteWire, sectionOrder, shuffleRuns, parseCidr, type Cidr } from './loadbalance.ts';

export interface LoadbalanceConfig {
  policy: 'round_robin';
  /** Subnets whose addresses go first, in this order (after the shuffle). Empty: none. */
  prefer: Cidr[];
}

/** The handler: shuffle NOERROR replies on the way out; everything else passes untouched. */
export function loadbalanceHandler(cfg: LoadbalanceConfig): Handler {
  const prefer = cfg.prefer.length > 0 ? cfg.prefer : null;
  const onReply = (req: Request, m: Msg): Msg => {
    if (m.rcode !== Rcode.NOERROR) return m;
    const out = balance(m, prefer);
    if (out !== m && !req.memoOff) {
      // A reused reply must be shuffled anew each time (src/server/memo.ts); with preferred subnets
      // the order is not a plain shuffle, so such replies are not reused.
      const runs = prefer === null && m.wire ? shuffleRuns(m) : undefined;
      if (runs) req.memoShuffleRuns(runs); else req.noMemo();
    }
    return out;
  };
  return {
    name: 'loadbalance',
    memo: true,
    serveDNS(req, next) {
      const qt = req.qtype;
      if (qt === Type.AXFR || qt === Type.IXFR) return next(req);
      const r = next(req);
      return r instanceof Promise ? r.then((m) => onReply(req, m)) : onReply(req, r);
    },
  };
}

/**
 * loadbalance: randomize the order of A, AAAA and MX records in replies (CNAMEs first), optionally
 * putting addresses from preferred subnets first.
 */
export const plugin = definePlugin<LoadbalanceConfig>({
  name: 'loadbalance',
  parse(c) {
    const args = c.argTokens;
    if (args.length > 0) {
      const policy = args[0]!;
      if (policy.text === 'weighted') {
        throw c.err(`policy 'weighted' is not supported by clusterdns (only round_robin)`, policy);
      }
      if (policy.text !== 'round_robin') throw c.err(`unknown policy: ${policy.text}`, policy);
      if (args.length > 1) throw c.err(`unknown property for ${policy.text}`, args[1]);
    }
    const prefer: Cidr[] = [];
    for (const line of c.lines()) {
      if (line.name !== 'prefer') throw line.unknownProperty();
      line.noBlock();
      if (line.argTokens.length === 0) throw line.argErr();
      for (const t of line.argTokens) {
        const cidr = parseCidr(t.text);
        if (typeof cidr === 'string') throw line.err(`invalid CIDR "${t.text}": ${cidr}`, t);
        prefer.push(cidr);
      }
    }
    return { policy: 'round_robin', prefer };
  },
  setup(cfg) {
    return loadbalanceHandler(cfg);
  },
});
