import type { Metrics } from '../../src/metrics.ts';
import { definePlugin, type InstanceApi, type SetupEnv } from '../../src/plugin.ts';
import type { Route } from '../../src/server/http.ts';
import { version } from '../../src/version.ts';
import { optionalHttpAddress } from '../health/address.ts';

export interface PrometheusConfig {
  addr: string;
}

/** CoreDNS's default: loopback only, so metrics are not exposed unless asked for (kubeadm writes ":9153"). */
export const DEFAULT_METRICS_ADDR = 'localhost:9153';

/** GET /metrics: the instance registry in the Prometheus text format. */
export function metricsRoute(metrics: Metrics): Route {
  return async (_req, res) => {
    const body = await metrics.text();
    res.writeHead(200, { 'content-type': metrics.contentType }).end(body);
  };
}

/** coredns_build_info: version and runtime (there is no Go; goversion carries the Node version). */
export function recordBuildInfo(metrics: Metrics): void {
  metrics.gauge('coredns_build_info',
    "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
    ['version', 'revision', 'goversion'])
    .set({ version, revision: '', goversion: `node ${process.version}` }, 1);
}

// The registry outlives reloads: the first prometheus setup of a new instance clears the previous
// configuration's plugin list, so plugins removed from the Corefile disappear from the metric.
const cleared = new WeakSet<InstanceApi>();

/** coredns_plugin_enabled = 1 for each plugin of the block, per listen address and zone. */
export function recordPluginsEnabled(env: SetupEnv): void {
  const gauge = env.metrics.gauge('coredns_plugin_enabled',
    'A metric that indicates whether a plugin is enabled on per server and zone basis.',
    ['server', 'zone', 'view', 'name']);
  if (!cleared.has(env.instance)) { cleared.add(env.instance); gauge.reset(); }
  for (const server of env.block.servers) {
    for (const zone of env.block.zones) {
      for (const name of env.block.plugins) gauge.set({ server, zone, view: '', name }, 1);
    }
  }
}

/**
 * prometheus: serve the instance's metrics on /metrics and record the coredns_dns_* request metrics
 * for this block. No handler: the server measures queries itself once asked to.
 */
export const plugin = definePlugin<PrometheusConfig>({
  name: 'prometheus',
  // Workers count their queries; main serves /metrics with the workers' registries summed in.
  placement: 'both',
  parse(c) {
    const addr = optionalHttpAddress(c, DEFAULT_METRICS_ADDR);
    for (const line of c.lines()) {
      switch (line.name) {
        case 'runtime_metrics':
          // Go runtime internals in CoreDNS; the Node runtime metrics (nodejs_*) are always on here.
          line.expectArgs(0);
          line.noBlock();
          break;
        case 'tls':
          throw line.err('serving metrics over TLS is not supported by clusterdns');
        default:
          throw line.unknownProperty();
      }
    }
    return { addr };
  },
  setup(cfg, env) {
    env.enableServerMetrics();
    if (env.role === 'worker') return undefined;
    env.metrics.enableDefaults();
    recordBuildInfo(env.metrics);
    recordPluginsEnabled(env);
    const unroute = env.http(cfg.addr).route('/metrics', metricsRoute(env.metrics));
    env.onFinalShutdown(unroute);
    return undefined;
  },
});
