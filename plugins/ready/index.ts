import { definePlugin } from '../../src/plugin.ts';
import { optionalHttpAddress } from '../health/address.ts';
import { Readiness, readyRoute, type Monitor } from './ready.ts';

export { Readiness, readyRoute, type Monitor, type ReadyStatus } from './ready.ts';

export interface ReadyConfig {
  addr: string;
  monitor: Monitor;
}

export const DEFAULT_READY_ADDR = ':8181';

/** ready: an HTTP readiness endpoint (/ready) that is 200 once every plugin with a readiness check is ready. */
export const plugin = definePlugin<ReadyConfig>({
  name: 'ready',
  placement: 'main',
  parse(c) {
    const addr = optionalHttpAddress(c, DEFAULT_READY_ADDR);
    let monitor: Monitor = 'until-ready';
    for (const line of c.lines()) {
      if (line.name !== 'monitor') throw line.unknownProperty();
      const [m] = line.expectArgs(1);
      line.noBlock();
      if (m !== 'until-ready' && m !== 'continuously') {
        throw line.err(`unknown monitor '${m}' (want until-ready or continuously)`, line.argTokens[0]);
      }
      monitor = m;
    }
    return { addr, monitor };
  },
  setup(cfg, env) {
    // Checks are read per probe: plugins later in the chain (kubernetes) register theirs after us.
    const readiness = new Readiness(() => env.readinessChecks(), env.instance, cfg.monitor);
    const unroute = env.http(cfg.addr).route('/ready', readyRoute(readiness, env.log));
    env.onFinalShutdown(unroute);
    return undefined;
  },
});
