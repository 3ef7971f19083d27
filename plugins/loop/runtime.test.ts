// loop with the real runtime: a server block that forwards to itself must be detected at startup.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { loadCorefile } from '../../src/corefile/parser.ts';
import { memoryLogger } from '../../src/log.ts';
import { Runtime } from '../../src/server/runtime.ts';
import { pickPort, retryOnAddrInUse } from '../../test/ports.ts';

// Until src/directives.ts lists loop (and forward), lend them to the config planner here.
vi.mock('../../src/directives.ts', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../../src/directives.ts')>();
  const { plugin: loop } = await import('./index.ts');
  const { plugin: forward } = await import('../forward/index.ts');
  const extra: Record<string, unknown> = { loop, forward };
  return { ...orig, lookupPlugin: (name: string) => orig.lookupPlugin(name) ?? extra[name] };
});

const dir = mkdtempSync(path.join(tmpdir(), 'clusterdns-loop-rt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let running: Runtime | undefined;
afterEach(async () => { await running?.stop(); running = undefined; vi.restoreAllMocks(); });

async function start(body: (port: number) => string) {
  const file = path.join(dir, `Corefile-${Math.random().toString(36).slice(2)}`);
  return retryOnAddrInUse(async () => {
    const port = pickPort();
    writeFileSync(file, `.:${port} {\n    bind 127.0.0.1\n${body(port)}}\n`);
    const log = memoryLogger();
    const rt = new Runtime({ log, defaultPort: 53, drainMs: 100 });
    await rt.start(rt.plan(loadCorefile(file, {})));
    running = rt;
    return { rt, log, port };
  });
}

describe('loop with the runtime', () => {
  it('exits with code 1 when the block forwards to itself', async () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const { log, port } = await start((port) => `    loop\n    forward . 127.0.0.1:${port}\n`);
    await expect.poll(() => exit.mock.calls.length, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);
    expect(exit).toHaveBeenCalledWith(1);
    const fatal = log.lines.filter((l) => l.startsWith('[FATAL] plugin/loop: '));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatch(new RegExp(
      `^\\[FATAL\\] plugin/loop: Loop \\(127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${port}\\) detected for zone "\\.", ` +
      `see https://coredns\\.io/plugins/loop#troubleshooting\\. Query: "HINFO \\d+\\.\\d+\\."$`));
  }, 20_000);

  it('stays quiet when the chain answers', async () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const { log } = await start(() => '    loop\n    whoami\n');
    await new Promise((r) => setTimeout(r, 300));
    expect(exit).not.toHaveBeenCalled();
    expect(log.lines.filter((l) => l.includes('plugin/loop'))).toEqual([]);
  });
});
