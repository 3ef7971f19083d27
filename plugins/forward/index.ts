import { definePlugin } from '../../src/plugin.ts';
import { type ForwardConfig, parseForward } from './config.ts';
import { Forward } from './forward.ts';
import { forwardMetrics } from './metrics.ts';

export { Forward } from './forward.ts';
export type { ForwardConfig, ForwardTimeouts, UpstreamAddr } from './config.ts';
export { defaultTimeouts } from './config.ts';

/**
 * How many forwards of a block are set up so far, keyed by the block's plugin list (one array per block):
 * a forward followed by another one in the chain may hand queries over with `next RCODE`.
 */
const forwardsSetUp = new WeakMap<readonly string[], number>();

/** forward: proxy queries for a zone to upstream DNS servers over UDP/TCP. */
export const plugin = definePlugin<ForwardConfig>({
  name: 'forward',
  // Several forwards per block are tried in Corefile order (see `next`).
  multiple: true,
  parse: parseForward,
  setup(cfg, env) {
    const names = env.block.plugins;
    const position = forwardsSetUp.get(names) ?? 0;
    forwardsSetUp.set(names, position + 1);
    const total = names.filter((n) => n === 'forward').length;
    if (cfg.fromWarning) env.log.warn(cfg.fromWarning);
    const f = new Forward(cfg, { metrics: forwardMetrics(env.metrics), nextIsForward: position + 1 < total });
    env.onFinalShutdown(() => f.stop());
    return f;
  },
});
