// Corefile → a validated plan: every directive parsed by its plugin, blocks grouped by listen address.
// Nothing here opens a socket, so a bad Corefile never starts a half-configured server.
import { Controller } from './corefile/controller.ts';
import { CorefileError, type Corefile, type ServerBlock, type ServerKey } from './corefile/types.ts';
import { chainIndex, isCoreDnsPlugin, lookupPlugin } from './directives.ts';
import type { PluginDef } from './plugin.ts';
import type { BindConfig } from '../plugins/bind/index.ts';

export interface PlannedDirective {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  def: PluginDef<any>;
  config: unknown;
  file: string;
  line: number;
}

export interface BlockPlan {
  index: number;
  block: ServerBlock;
  /** Canonical zones of the block's keys. */
  zones: string[];
  port: number;
  /** Listen hosts ('' = every address). */
  hosts: string[];
  /** Directives in chain order (src/directives.ts), each parsed once. */
  directives: PlannedDirective[];
}

export interface ListenPlan {
  host: string;
  port: number;
  /** CoreDNS-style label for metrics and logs: "dns://:53", "dns://127.0.0.1:1053". */
  label: string;
  blocks: BlockPlan[];
}

export interface Plan {
  corefile: Corefile;
  blocks: BlockPlan[];
  listeners: ListenPlan[];
}

export interface PlanOptions {
  /** Port for keys that name none (-dns.port). */
  defaultPort: number;
}

export function listenLabel(host: string, port: number): string {
  return `dns://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function keyPort(k: ServerKey, defaultPort: number): number {
  return k.port ?? defaultPort;
}

export function buildPlan(corefile: Corefile, opts: PlanOptions): Plan {
  const blocks: BlockPlan[] = [];
  const seen = new Map<string, ServerKey>();
  corefile.blocks.forEach((block, index) => {
    const ports = new Set(block.keys.map((k) => keyPort(k, opts.defaultPort)));
    if (ports.size > 1) {
      const k = block.keys[0]!;
      throw new CorefileError(k.file, k.line, undefined, `all keys of a server block must use the same port (got ${[...ports].join(', ')})`);
    }
    const port = [...ports][0]!;
    const parsed: PlannedDirective[] = [];
    const once = new Map<string, number>();
    for (const d of block.directives) {
      const name = d.name.text;
      const def = lookupPlugin(name);
      if (!def) {
        const why = isCoreDnsPlugin(name) ? `plugin '${name}' is not supported by clusterdns` : `unknown directive '${name}'`;
        throw new CorefileError(d.name.file, d.name.line, undefined, why);
      }
      if (!def.multiple && once.has(name)) {
        throw new CorefileError(d.name.file, d.name.line, name, `this plugin can only be used once per Server Block (first at line ${once.get(name)})`);
      }
      once.set(name, d.name.line);
      const config: unknown = def.parse(new Controller(d, block));
      parsed.push({ def, config, file: d.name.file, line: d.name.line });
    }
    // Stable sort: same-plugin directives keep Corefile order.
    parsed.sort((a, b) => chainIndex(a.def.name) - chainIndex(b.def.name));
    const binds = parsed.filter((p) => p.def.name === 'bind').map((p) => p.config as BindConfig);
    let hosts = binds.length ? [...new Set(binds.flatMap((b) => b.addresses))] : [''];
    const except = new Set(binds.flatMap((b) => b.except));
    hosts = hosts.filter((h) => !except.has(h));
    if (hosts.length === 0) {
      throw new CorefileError(block.file, block.line, 'bind', 'every address is excluded');
    }
    for (const k of block.keys) {
      for (const h of hosts) {
        const id = `${k.zone}|${h}|${port}`;
        if (seen.has(id)) {
          throw new CorefileError(k.file, k.line, undefined, `cannot serve dns://${k.zone}:${port} - it is already defined`);
        }
        seen.set(id, k);
      }
    }
    blocks.push({ index, block, zones: [...new Set(block.keys.map((k) => k.zone))], port, hosts, directives: parsed });
  });
  const byAddr = new Map<string, ListenPlan>();
  for (const b of blocks) {
    for (const host of b.hosts) {
      const id = `${host}|${b.port}`;
      let l = byAddr.get(id);
      if (!l) { l = { host, port: b.port, label: listenLabel(host, b.port), blocks: [] }; byAddr.set(id, l); }
      l.blocks.push(b);
    }
  }
  // A wildcard listener and a specific one on the same port would collide at bind time.
  const ports = new Map<number, string[]>();
  for (const l of byAddr.values()) ports.set(l.port, [...(ports.get(l.port) ?? []), l.host]);
  for (const [port, hs] of ports) {
    if (hs.includes('') && hs.length > 1) {
      const b = blocks.find((x) => x.port === port && x.hosts.includes(''))!;
      throw new CorefileError(b.block.file, b.block.line, undefined,
        `port ${port} is used both on every address and with bind (${hs.filter(Boolean).join(', ')}): add bind to every block on this port`);
    }
  }
  return { corefile, blocks, listeners: [...byAddr.values()] };
}
