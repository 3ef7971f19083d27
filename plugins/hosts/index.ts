import { statSync } from 'node:fs';
import { isIP } from 'node:net';
import { canonical } from '../../src/dns/name.ts';
import { definePlugin } from '../../src/plugin.ts';
import { HostsData, HostsHandler, type HostsConfig, type HostsMetrics } from './hosts.ts';

export { HostsData, HostsHandler, type HostsConfig } from './hosts.ts';
export { HostsTable, parseHosts, parseAddress, entryCount } from './hostsfile.ts';

const DEFAULT_PATH = '/etc/hosts';
const DEFAULT_TTL = 3600;
const DEFAULT_RELOAD_MS = 5000;

/**
 * hosts: answer A, AAAA and PTR queries from an /etc/hosts style file and lines inlined in the
 * Corefile. The file is checked for changes every `reload` period.
 */
export const plugin = definePlugin<HostsConfig>({
  name: 'hosts',
  parse(c) {
    const args = c.args;
    const cfg: HostsConfig = {
      path: DEFAULT_PATH, pathGiven: false, zones: c.serverZones, inline: [], ttl: DEFAULT_TTL,
      reverse: true, reloadMs: DEFAULT_RELOAD_MS, fallthrough: null,
    };
    if (args.length > 0) { cfg.path = args[0]!; cfg.pathGiven = true; }
    if (args.length > 1) cfg.zones = [...new Set(args.slice(1).map(canonical))];
    for (const line of c.lines()) {
      line.noBlock();
      switch (line.name) {
        case 'fallthrough':
          cfg.fallthrough = line.args.length === 0 ? ['.'] : line.args.map(canonical);
          break;
        case 'no_reverse':
          line.expectArgs(0);
          cfg.reverse = false;
          break;
        case 'ttl': {
          const [t] = line.argTokens;
          if (!t) throw line.err('ttl needs a time in second');
          if (line.argTokens.length > 1) throw line.argErr();
          if (!/^-?\d+$/.test(t.text)) throw line.err('ttl needs a number of second', t);
          const ttl = Number(t.text);
          if (ttl <= 0 || ttl > 65535) throw line.err('ttl provided is invalid', t);
          cfg.ttl = ttl;
          break;
        }
        case 'reload': {
          if (line.argTokens.length !== 1) throw line.err('reload needs a duration (zero seconds to disable)');
          const t = line.argTokens[0]!;
          const ms = line.duration(t);
          if (ms < 0) throw line.err(`invalid duration for reload '${t.text}'`, t);
          cfg.reloadMs = ms;
          break;
        }
        default: {
          // An inline hosts line starts with an address; anything else is a typo, not data.
          const addr = line.name.includes('%') ? line.name.slice(0, line.name.indexOf('%')) : line.name;
          if (isIP(addr) === 0) throw line.unknownProperty();
          if (line.args.length === 0) throw line.err(`no host name for '${line.name}'`);
          cfg.inline.push([line.name, ...line.args].join(' '));
        }
      }
    }
    return cfg;
  },
  async setup(cfg, env) {
    if (cfg.pathGiven) {
      try {
        if (statSync(cfg.path).isDirectory()) env.log.warn(`Hosts file "${cfg.path}" is a directory`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new Error(`plugin/hosts: unable to access hosts file '${cfg.path}': ${(e as Error).message}`);
        }
        env.log.warn(`File does not exist: ${cfg.path}`);
      }
    }
    const entries = env.metrics.gauge('coredns_hosts_entries', 'The combined number of entries in hosts and Corefile.');
    const reloadTime = env.metrics.gauge('coredns_hosts_reload_timestamp_seconds', 'The timestamp of the last reload of hosts file.');
    const metrics: HostsMetrics = { entries: (n) => entries.set(n), reloaded: (t) => reloadTime.set(t) };
    const data = new HostsData(cfg, env.log, metrics);
    metrics.entries(data.table.entries);
    await data.refresh();

    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const tick = () => {
      data.refresh().catch((e: unknown) => env.log.warn(`hosts file reload failed: ${String(e)}`))
        .finally(() => { if (!stopped) timer = setTimeout(tick, cfg.reloadMs).unref(); });
    };
    if (cfg.reloadMs > 0) {
      env.onStartup(() => { if (!stopped) timer = setTimeout(tick, cfg.reloadMs).unref(); });
    }
    env.onFinalShutdown(() => { stopped = true; clearTimeout(timer); });
    return new HostsHandler(data);
  },
});
