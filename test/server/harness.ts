// Start a real Runtime on 127.0.0.1 with hand-made plugins (no Corefile), for server-core tests.
import type { Plan, BlockPlan } from '../../src/config.ts';
import { memoryLogger } from '../../src/log.ts';
import type { Handler, PluginDef, SetupEnv } from '../../src/plugin.ts';
import { Runtime } from '../../src/server/runtime.ts';
import type { ListenerOptions } from '../../src/server/listener.ts';

export interface TestBlock {
  zones: string[];
  handlers?: Handler[];
  /** Extra setup work with the env (hooks, observers, server metrics). */
  setup?: (env: SetupEnv) => void;
}

export function planOf(blocks: TestBlock[], host = '127.0.0.1'): Plan {
  const bps: BlockPlan[] = blocks.map((b, index) => {
    const handlers = b.handlers ?? [];
    const directives: BlockPlan['directives'] = [];
    if (b.setup) {
      const setupFn = b.setup;
      const def: PluginDef<null> = { name: 'testsetup', parse: () => null, setup: (_c, env) => { setupFn(env); return undefined; } };
      directives.push({ def, config: null, file: 'test', line: 1 });
    }
    for (const h of handlers) {
      const def: PluginDef<null> = { name: h.name, parse: () => null, setup: () => h };
      directives.push({ def, config: null, file: 'test', line: 1 });
    }
    return { index, block: { keys: [], directives: [], file: 'test', line: 1 }, zones: b.zones, port: 0, hosts: [host], directives };
  });
  return {
    corefile: { file: 'test', blocks: [], files: [] },
    blocks: bps,
    listeners: [{ host, port: 0, label: `dns://${host}:0`, blocks: bps }],
  };
}

export async function startTest(blocks: TestBlock[], opts: { listener?: Partial<ListenerOptions>; maxUdpSize?: number; drainMs?: number } = {}) {
  const log = memoryLogger();
  const rt = new Runtime({ log, defaultPort: 0, ...opts });
  await rt.start(planOf(blocks));
  const l = rt.listeners[0]!;
  return { rt, log, port: l.udpPort, tcpPort: l.tcpPort, stop: () => rt.stop() };
}
