// Reload with the real runtime: a Corefile on disk, real UDP on 127.0.0.1, rt.reload() after edits.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { loadCorefile } from '../../src/corefile/parser.ts';
import { decode } from '../../src/dns/codec.ts';
import { type Msg, Rcode, Type } from '../../src/dns/types.ts';
import { memoryLogger } from '../../src/log.ts';
import { Runtime } from '../../src/server/runtime.ts';
import { udpExchange } from '../../test/client.ts';
import { queryBytes } from '../../test/helpers.ts';
import { pickPort, retryOnAddrInUse } from '../../test/ports.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'clusterdns-reload-rt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let running: Runtime | undefined;
afterEach(async () => { await running?.stop(); running = undefined; });

// Until src/directives.ts lists reload, lend it to the config planner here.
vi.mock('../../src/directives.ts', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../../src/directives.ts')>();
  const { plugin: reload } = await import('./index.ts');
  return { ...orig, lookupPlugin: (name: string) => orig.lookupPlugin(name) ?? (name === 'reload' ? reload : undefined) };
});

/** A Corefile serving `zones` with whoami on 127.0.0.1:port (plus reload when it is registered). */
const corefile = (zones: string[], port: number, extra = '', reload = '10s') =>
  `${zones.map((z) => `${z}:${port}`).join(' ')} {\n    bind 127.0.0.1\n    reload ${reload}\n    whoami\n${extra}}\n`;

/** Start a runtime on a random high port (another one if that port is taken). */
async function start(zones: string[], reload = '10s') {
  const file = path.join(dir, `Corefile-${Math.random().toString(36).slice(2)}`);
  return retryOnAddrInUse(async () => {
    const port = pickPort();
    writeFileSync(file, corefile(zones, port, '', reload));
    const log = memoryLogger();
    const rt = new Runtime({ log, defaultPort: 53, drainMs: 200 });
    await rt.start(rt.plan(loadCorefile(file, {})));
    running = rt;
    return { rt, log, port, file };
  });
}

async function ask(port: number, name: string): Promise<Msg | undefined> {
  const b = await udpExchange(port, queryBytes(name, Type.A, { id: Math.floor(Math.random() * 65536) }), { timeoutMs: 1000 });
  return b ? decode(b) : undefined;
}

describe('reload with the runtime', () => {
  it('switches to the edited Corefile, keeps the old one when the new one is broken, and never stops answering', async () => {
    const { rt, log, port, file } = await start(['example.org']);
    const listener = rt.listeners[0]!;
    expect((await ask(port, 'a.example.org.'))?.rcode).toBe(Rcode.NOERROR);
    expect((await ask(port, 'a.example.net.'))?.rcode).toBe(Rcode.REFUSED);

    // Queries in a loop, on fresh sockets, for as long as the reloads take.
    let querying = true;
    const results: Array<number | 'timeout'> = [];
    const loop = Promise.all([0, 1, 2, 3].map(async () => {
      while (querying) {
        const m = await ask(port, 'a.example.org.');
        results.push(m ? m.rcode : 'timeout');
      }
    }));

    writeFileSync(file, corefile(['example.org', 'example.net'], port));
    await rt.reload();
    expect((await ask(port, 'a.example.net.'))?.rcode).toBe(Rcode.NOERROR);

    // A broken Corefile: the reload fails and the running configuration keeps answering.
    writeFileSync(file, corefile(['example.org'], port, '    no_such_plugin\n'));
    await expect(rt.reload()).rejects.toThrow(/unknown directive 'no_such_plugin'/);
    expect((await ask(port, 'a.example.net.'))?.rcode).toBe(Rcode.NOERROR);

    // A Corefile that parses but cannot be planned: the same.
    writeFileSync(file, corefile(['example.org'], port, '    bind 127.0.0.1 except 127.0.0.1\n'));
    await expect(rt.reload()).rejects.toThrow(/every address is excluded/);
    expect((await ask(port, 'a.example.net.'))?.rcode).toBe(Rcode.NOERROR);

    // Several reloads back to back while queries flow.
    for (let i = 0; i < 5; i++) {
      writeFileSync(file, corefile(i % 2 === 0 ? ['example.org', 'example.net'] : ['example.org'], port));
      await rt.reload();
    }
    expect((await ask(port, 'a.example.net.'))?.rcode).toBe(Rcode.NOERROR);
    await new Promise((r) => setTimeout(r, 50));
    querying = false;
    await loop;

    expect(results.length).toBeGreaterThan(20);
    expect(results.filter((r) => r !== Rcode.NOERROR)).toEqual([]);
    // The same sockets served throughout.
    expect(rt.listeners[0]).toBe(listener);
    expect(log.lines.filter((l) => l.startsWith('[INFO] plugin/reload: Running configuration SHA512 = ')).length).toBe(1 + 1 + 5);
  });

  // KNOWN BUG (src/server/runtime.ts, Runtime.replace): when the new configuration fails after its
  // plugins were set up (here: its HTTP listener cannot bind), replace() does not run the failed
  // instance's finalShutdown hooks, so its /metrics route stays on the shared mux and every later
  // reload tries to bind that address again and fails. Remove `.fails` once replace() cleans up.
  it('a configuration that fails while starting does not break later reloads', async () => {
    const { rt, port, file } = await start(['example.org']);
    writeFileSync(file, corefile(['example.org'], port, '    prometheus 192.0.2.1:9153\n'));
    await expect(rt.reload()).rejects.toThrow(/EADDRNOTAVAIL|EADDRINUSE|EACCES/);
    expect((await ask(port, 'a.example.org.'))?.rcode).toBe(Rcode.NOERROR);
    writeFileSync(file, corefile(['example.org', 'example.net'], port));
    await rt.reload();
    expect((await ask(port, 'a.example.net.'))?.rcode).toBe(Rcode.NOERROR);
  });

  it('the reload plugin reloads on its own, and a replaced configuration stops checking', async () => {
    const { rt, log, port, file } = await start(['example.org'], '2s 1s');
    const reloads = vi.spyOn(rt, 'reload');
    const failed = async () => (await rt.metrics.registry.getSingleMetric('coredns_reload_failed_total')!.get()).values[0]?.value ?? 0;
    const versions = async () => (await rt.metrics.registry.getSingleMetric('coredns_reload_version_info')!.get()).values.map((v) => v.labels['value']);
    const [first] = await versions();

    writeFileSync(file, corefile(['example.org', 'example.net'], port, '', '2s 1s'));
    await expect.poll(async () => (await ask(port, 'a.example.net.'))?.rcode, { timeout: 6000, interval: 100 }).toBe(Rcode.NOERROR);
    expect(reloads).toHaveBeenCalledTimes(1);
    const [second] = await versions();
    expect(second).not.toBe(first);

    // Broken: counted, and the running configuration keeps answering.
    writeFileSync(file, corefile(['example.org'], port, '    no_such_plugin\n', '2s 1s'));
    await expect.poll(failed, { timeout: 6000, interval: 100 }).toBe(1);
    expect(log.lines.some((l) => l.startsWith("[ERROR] plugin/reload: Corefile changed but reload failed: ") && l.includes("no_such_plugin"))).toBe(true);
    expect((await ask(port, 'a.example.net.'))?.rcode).toBe(Rcode.NOERROR);
    expect(await versions()).toEqual([second]);

    // Fixed again: the new configuration's checker (not the replaced one's) reloads, once.
    writeFileSync(file, corefile(['example.org'], port, '', '2s 1s'));
    await expect.poll(async () => (await ask(port, 'a.example.net.'))?.rcode, { timeout: 6000, interval: 100 }).toBe(Rcode.REFUSED);
    await new Promise((r) => setTimeout(r, 2600));
    expect(reloads).toHaveBeenCalledTimes(3);
    expect(await failed()).toBe(1);
    expect(await versions()).toHaveLength(1);
    expect(log.lines.filter((l) => l.startsWith('[INFO] plugin/reload: Running configuration SHA512 = '))).toHaveLength(3);
  }, 40_000);
});
