// The ONE global plugin order (CoreDNS's plugin.cfg): a query meets plugins in this order no matter
// how the Corefile lists them. Names CoreDNS knows but clusterdns does not implement are kept so the
// error can say "not supported" instead of "unknown".
import type { PluginDef } from './plugin.ts';
import { plugin as autopath } from '../plugins/autopath/index.ts';
import { plugin as bind } from '../plugins/bind/index.ts';
import { plugin as bufsize } from '../plugins/bufsize/index.ts';
import { plugin as cache } from '../plugins/cache/index.ts';
import { plugin as errors } from '../plugins/errors/index.ts';
import { plugin as forward } from '../plugins/forward/index.ts';
import { plugin as health } from '../plugins/health/index.ts';
import { plugin as hosts } from '../plugins/hosts/index.ts';
import { plugin as kubernetes } from '../plugins/kubernetes/index.ts';
import { plugin as loadbalance } from '../plugins/loadbalance/index.ts';
import { plugin as log } from '../plugins/log/index.ts';
import { plugin as loop } from '../plugins/loop/index.ts';
import { plugin as prometheus } from '../plugins/prometheus/index.ts';
import { plugin as ready } from '../plugins/ready/index.ts';
import { plugin as reload } from '../plugins/reload/index.ts';
import { plugin as whoami } from '../plugins/whoami/index.ts';

export const coreDnsOrder = [
  'root', 'metadata', 'geoip', 'cancel', 'tls', 'quic', 'timeouts', 'multisocket', 'reload', 'nsid',
  'bufsize', 'bind', 'debug', 'trace', 'ready', 'health', 'pprof', 'prometheus', 'errors', 'log', 'dnstap',
  'local', 'dns64', 'acl', 'any', 'chaos', 'loadbalance', 'tsig', 'cache', 'rewrite', 'header', 'dnssec',
  'autopath', 'minimal', 'template', 'transfer', 'hosts', 'route53', 'azure', 'clouddns', 'k8s_external',
  'kubernetes', 'file', 'auto', 'secondary', 'etcd', 'loop', 'forward', 'grpc', 'erratic', 'whoami', 'on',
  'sign', 'view',
] as const;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyPlugin = PluginDef<any>;

const implemented: AnyPlugin[] = [
  autopath, bind, bufsize, cache, errors, forward, health, hosts, kubernetes, loadbalance, log, loop, prometheus, ready, reload, whoami,
];

/** Implemented plugins in chain order. */
export const plugins: readonly AnyPlugin[] = coreDnsOrder
  .map((name) => implemented.find((p) => p.name === name))
  .filter((p): p is AnyPlugin => p !== undefined);

const byName = new Map(plugins.map((p) => [p.name, p]));
const order = new Map<string, number>(coreDnsOrder.map((n, i) => [n, i]));

export function lookupPlugin(name: string): AnyPlugin | undefined { return byName.get(name); }
export function isCoreDnsPlugin(name: string): boolean { return order.has(name); }
export function chainIndex(name: string): number { return order.get(name) ?? Number.MAX_SAFE_INTEGER; }
