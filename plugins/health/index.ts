import { definePlugin, type InstanceApi } from '../../src/plugin.ts';
import { formatDuration } from '../errors/duration.ts';
import { optionalHttpAddress } from './address.ts';
import { SelfCheck, healthMetrics, healthRoute } from './health.ts';

export { HEALTH_BUCKETS, SelfCheck, healthMetrics, healthRoute } from './health.ts';
export { loopbackBase, parseHttpAddress } from './address.ts';

export interface HealthConfig {
  /** Listen address of the endpoint. */
  addr: string;
  /** How long to keep answering DNS after a shutdown request (0: no lameduck). */
  lameduckMs: number;
}

export const DEFAULT_HEALTH_ADDR = ':8080';

// Health is process wide: blocks naming the same address share one route and one self-check, and
// the lameduck wait happens once, for the longest duration asked (CoreDNS adds them up instead).
interface InstanceHealth { addrs: Set<string>; lameduck: { ms: number } | undefined }
const perInstance = new WeakMap<InstanceApi, InstanceHealth>();

function stateFor(instance: InstanceApi): InstanceHealth {
  let s = perInstance.get(instance);
  if (!s) { s = { addrs: new Set(), lameduck: undefined }; perInstance.set(instance, s); }
  return s;
}

/** health: an HTTP liveness endpoint (/health → 200 OK) and an optional lameduck delay on shutdown. */
export const plugin = definePlugin<HealthConfig>({
  name: 'health',
  // One /health and one lameduck for the process: main's (workers keep answering during it).
  placement: 'main',
  parse(c) {
    const addr = optionalHttpAddress(c, DEFAULT_HEALTH_ADDR);
    let lameduckMs = 0;
    for (const line of c.lines()) {
      if (line.name !== 'lameduck') throw line.unknownProperty();
      line.expectArgs(1);
      line.noBlock();
      const t = line.argTokens[0]!;
      lameduckMs = line.duration(t);
      if (lameduckMs <= 0) throw line.err(`lameduck duration must be positive, got '${t.text}'`, t);
    }
    return { addr, lameduckMs };
  },
  setup(cfg, env) {
    const state = stateFor(env.instance);
    const log = env.log;
    if (!state.addrs.has(cfg.addr)) {
      state.addrs.add(cfg.addr);
      const mux = env.http(cfg.addr);
      const unroute = mux.route('/health', healthRoute);
      const check = new SelfCheck(mux, healthMetrics(env.metrics), log);
      env.onStartup(() => check.start());
      env.onFinalShutdown(() => { check.stop(); unroute(); });
    }
    if (cfg.lameduckMs > 0) {
      if (!state.lameduck) {
        const lameduck = { ms: 0 };
        state.lameduck = lameduck;
        // DNS keeps answering while we wait; ready reports 503 because the instance is draining.
        env.onShutdown(async () => {
          log.info(`Going into lameduck mode for ${formatDuration(lameduck.ms)}`);
          await new Promise<void>((resolve) => setTimeout(resolve, lameduck.ms));
        });
      }
      state.lameduck.ms = Math.max(state.lameduck.ms, cfg.lameduckMs);
    }
    return undefined;
  },
});
