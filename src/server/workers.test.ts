// The worker pool in-process: a main runtime (no DNS sockets of its own) with two worker threads
// started from the TypeScript entry (as `node src/cli.ts -workers 2` runs it).
import { describe, expect, it } from 'vitest';
import { parseCorefile } from '../corefile/parser.ts';
import { decode } from '../dns/codec.ts';
import { Type } from '../dns/types.ts';
import { memoryLogger } from '../log.ts';
import { udpExchange } from '../../test/client.ts';
import { queryBytes } from '../../test/helpers.ts';
import { Runtime } from './runtime.ts';
import { WorkerPool } from './workers.ts';
import { pickPort } from '../../test/ports.ts';

const port = pickPort;

function mainRuntime(count: number) {
  const log = memoryLogger();
  const exits: Array<[number, number]> = [];
  const pool = new WorkerPool({ count, log, defaultPort: 53, drainMs: 200, onWorkerExit: (i, c) => exits.push([i, c]) });
  const rt = new Runtime({ log, defaultPort: 53, role: 'main', dataPlane: pool, newLink: pool.newLink });
  rt.metrics.addRemote(() => pool.collect());
  return { rt, pool, log, exits };
}

describe('WorkerPool', () => {
  it('starts workers that answer on a shared port, sums their metrics, stops them', async () => {
    const { rt, pool, exits } = mainRuntime(2);
    const p = port();
    await rt.start(rt.plan(parseCorefile(`.:${p} {\n  bind 127.0.0.1\n  prometheus 127.0.0.1:0\n  whoami\n}\n`, { file: 'Corefile' })));
    try {
      expect(pool.size).toBe(2);
      expect(new Set(pool.threadIds).size).toBe(2);
      expect(rt.listeners).toEqual([]); // main holds no DNS socket
      for (let i = 0; i < 10; i++) {
        const r = await udpExchange(p, queryBytes('example.org.', Type.A));
        expect(decode(r!).additional[0]!.data).toBe('127.0.0.1');
      }
      const text = await rt.metrics.text();
      const total = text.split('\n').filter((l) => l.startsWith('coredns_dns_requests_total{'))
        .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      expect(total).toBe(10);
    } finally {
      await rt.stop();
    }
    expect(pool.size).toBe(0);
    expect(exits).toEqual([]); // a stop is no crash
    expect(await udpExchange(p, queryBytes('example.org.', Type.A), { timeoutMs: 200 })).toBeUndefined();
  });

  it('a configuration that fails in the workers fails the start, and no worker is left', async () => {
    const { rt, pool } = mainRuntime(2);
    const text = `.:${port()} {\n  bind 127.0.0.1\n  hosts /etc/hostname/not-a-dir\n  whoami\n}\n`;
    await expect(rt.start(rt.plan(parseCorefile(text, { file: 'Corefile' })))).rejects.toThrow(/unable to access hosts file/);
    expect(pool.size).toBe(0);
  });

  it('refuses port 0 (each worker would bind a different port)', async () => {
    const { rt } = mainRuntime(2);
    await expect(rt.start(rt.plan(parseCorefile(`.:0 {\n  whoami\n}\n`, { file: 'Corefile' })))).rejects.toThrow(/fixed port/);
  });
});
