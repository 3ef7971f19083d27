// autopath: parse `autopath [ZONES...] RESOLV-CONF|@PLUGIN` (pure) and wire the handler. Error texts
// follow CoreDNS's plugin/autopath/setup.go.
import { readFile } from 'node:fs/promises';
import { CorefileError } from '../../src/corefile/types.ts';
import { parseServerKey } from '../../src/corefile/parser.ts';
import { definePlugin, type Handler, type SetupEnv } from '../../src/plugin.ts';
import { AutoPath, type PodNamespaces, type SearchSource, searchFromResolvConf } from './autopath.ts';

export { AutoPath, type AutoPathOptions, type PodNamespaces, type SearchSource, podSearch, searchFromResolvConf } from './autopath.ts';

export interface AutopathConfig {
  /** Canonical zones autopath acts in: the arguments before the last, else the server block's zones. */
  zones: string[];
  /** `@NAME`: the plugin that knows each client's search path (only `kubernetes` implements it). */
  plugin: string | null;
  /** Otherwise a resolv.conf-like file whose `search` line is the path for every client. */
  resolvConf: string | null;
  /** Where the directive is written, for errors found at setup. */
  file: string;
  line: number;
}

export interface AutopathSetupOptions {
  /** The server's own resolv.conf, whose search list follows the pod's three (CoreDNS reads it too). */
  hostResolvConf?: string;
}

const hostResolvConf = '/etc/resolv.conf';

function metricsFor(env: SetupEnv) {
  return env.metrics.fastCounter('coredns_autopath_success_total', 'Counter of requests that did autopath.', ['server']);
}

/** Does a peer handler know clients' namespaces? */
function isPodNamespaces(h: Handler): h is Handler & PodNamespaces {
  const x = h as Partial<PodNamespaces>;
  return Array.isArray(x.zones) && typeof x.namespaceOfIP === 'function';
}

/** Wire a parsed configuration. Reads the resolv.conf now, so a reload picks up a changed file. */
export async function setupAutopath(cfg: AutopathConfig, env: SetupEnv, opts: AutopathSetupOptions = {}): Promise<AutoPath> {
  const fail = (msg: string) => new CorefileError(cfg.file, cfg.line, 'autopath', msg);
  let source: SearchSource;
  if (cfg.plugin === null) {
    const path = cfg.resolvConf!;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw fail(`failed to parse "${path}": ${(e as Error).message}`);
    }
    const search = searchFromResolvConf(text);
    if (search.length === 0) env.log.warn(`no search domains in "${path}": autopath does nothing`);
    source = { kind: 'static', search: [...search, '.'] };
  } else {
    const name = cfg.plugin;
    // CoreDNS appends its own resolv.conf search list (the node's, which the kubelet gives pods too).
    let hostSearch: string[] = [];
    try {
      hostSearch = searchFromResolvConf(await readFile(opts.hostResolvConf ?? hostResolvConf, 'utf8'));
    } catch { /* no resolv.conf: the cluster domains alone */ }
    let pods: PodNamespaces | undefined;
    // Peers are known once the whole block is set up; startup hooks run after that.
    env.onStartup(() => {
      const h = env.peer(name);
      if (!h) {
        env.log.warn(`no plugin "${name}" in this server block: autopath does nothing`);
        return;
      }
      if (!isPodNamespaces(h)) throw fail(`${name} does not implement the AutoPather interface`);
      pods = h;
    });
    source = { kind: 'pods', pods: () => pods, hostSearch };
  }
  return new AutoPath({ zones: cfg.zones, source, success: metricsFor(env) });
}

/** `autopath [ZONES...] RESOLV-CONF|@PLUGIN` — server-side search path completion. */
export const plugin = definePlugin<AutopathConfig>({
  name: 'autopath',
  parse(c) {
    c.noBlock();
    const toks = c.argTokens;
    const last = toks.at(-1);
    if (!last) throw c.err('no resolv-conf specified');
    let pluginName: string | null = null;
    let resolvConf: string | null = null;
    if (last.text.startsWith('@')) {
      pluginName = last.text.slice(1);
      if (pluginName === '') throw c.err(`no plugin named after '@'`, last);
    } else {
      resolvConf = last.text;
    }
    const zones: string[] = [];
    for (const t of toks.slice(0, -1)) {
      let keys;
      try {
        keys = parseServerKey(t.text, t.file, t.line);
      } catch (e) {
        throw c.err((e as Error).message.replace(/^.*Error during parsing: /, ''), t);
      }
      for (const k of keys) if (!zones.includes(k.zone)) zones.push(k.zone);
    }
    if (zones.length === 0) for (const z of c.serverZones) if (!zones.includes(z)) zones.push(z);
    return { zones, plugin: pluginName, resolvConf, file: c.file, line: c.line };
  },
  setup: (cfg, env) => setupAutopath(cfg, env),
});
