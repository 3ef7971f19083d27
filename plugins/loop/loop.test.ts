import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { type Msg, Rcode, Type } from '../../src/dns/types.ts';
import type { Next } from '../../src/plugin.ts';
import type { Request } from '../../src/request.ts';
import { fakeEnv, makeRequest } from '../../test/helpers.ts';
import { LoopHandler, plugin, probeName, type LoopConfig } from './index.ts';

function controllers(text: string): Controller[] {
  const cf = parseCorefile(text, { file: 'Corefile', env: {} });
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === 'loop').map((d) => new Controller(d, b)));
}
const parse = (directive: string, key = '.'): LoopConfig => plugin.parse(controllers(`${key} {\n${directive}\n}\n`)[0]!);

/**
 * Set up loop in front of `downstream` and wire fakeEnv's instance.query to that chain, as the
 * runtime does (a query from 127.0.0.1 into the block's chain).
 */
function harness(cfg: Partial<LoopConfig>, downstream: (req: Request, chain: (req: Request) => Promise<Msg>) => Msg | Promise<Msg>) {
  const exits: number[] = [];
  let h: LoopHandler;
  const chain = async (req: Request): Promise<Msg> => await h.serveDNS(req, (r) => downstream(r, chain));
  let probes = 0;
  const f = fakeEnv({ block: { zones: ['.'], servers: ['dns://:1053'], index: 0, plugins: ['loop'] } });
  f.env.instance = {
    draining: false,
    reload: async () => undefined,
    query: async (_block, name, type) => { probes++; return await chain(makeRequest(name, type, { remote: '127.0.0.1', remotePort: 0 })); },
  };
  h = plugin.setup({ zone: '.', retryMs: 10, graceMs: 30, budgetMs: 500, exit: (c) => exits.push(c), ...cfg }, f.env) as LoopHandler;
  const start = async () => { for (const s of f.startup) await s(); };
  const stop = async () => { for (const s of f.finalShutdown) await s(); };
  return { ...f, h, exits, start, stop, probes: () => probes, chain };
}

describe('loop: parse', () => {
  it('takes no arguments and uses the first zone of the block', () => {
    expect(parse('loop')).toEqual({ zone: '.' });
    expect(parse('loop', 'Example.ORG:1053 example.net')).toEqual({ zone: 'example.org.' });
    expect(() => parse('loop now')).toThrow(/plugin\/loop: Corefile:2 - Error during parsing: Wrong argument count/);
    expect(() => parse('loop {\n x\n}')).toThrow(/unexpected block/);
  });

  it('makes a random two-label probe name in the zone', () => {
    expect(probeName('.')).toMatch(/^\d+\.\d+\.$/);
    expect(probeName('example.org.')).toMatch(/^\d+\.\d+\.example\.org\.$/);
    expect(probeName('.')).not.toBe(probeName('.'));
  });
});

describe('loop: detection', () => {
  it('exits with a CoreDNS-worded FATAL line when the probe comes back through a forwarder', async () => {
    // The "forwarder" sends every HINFO query back into the chain, as a forward to ourselves would.
    const t = harness({}, async (req, chain) => {
      if (req.qtype === Type.HINFO) return await chain(makeRequest(req.name, req.qtype, { remote: '127.0.0.1', remotePort: 55953 }));
      return req.reply(Rcode.NXDOMAIN);
    });
    await t.start();
    await expect.poll(() => t.exits, { timeout: 2000, interval: 5 }).toEqual([1]);
    const fatal = t.log.lines.filter((l) => l.startsWith('[FATAL]'));
    expect(fatal).toEqual([
      `[FATAL] plugin/loop: Loop (127.0.0.1:55953 -> :1053) detected for zone ".", see https://coredns.io/plugins/loop#troubleshooting. Query: "HINFO ${t.h.qname}"`,
    ]);
    await t.stop();
  });

  it('does not exit when the probe gets an answer, and stops counting after the grace period', async () => {
    const t = harness({}, (req) => req.reply(Rcode.NXDOMAIN));
    await t.start();
    await expect.poll(() => t.h.disabled, { timeout: 2000, interval: 5 }).toBe(true);
    expect(t.probes()).toBe(1);
    expect(t.h.count).toBe(1);
    // Disabled: the probe name is no longer counted, so a later replay can't kill the process.
    for (let i = 0; i < 5; i++) await t.chain(makeRequest(t.h.qname, Type.HINFO));
    expect(t.h.count).toBe(1);
    expect(t.exits).toEqual([]);
    await t.stop();
  });

  it('retries failed probes within the budget, ignores the errors, then gives up', async () => {
    let calls = 0;
    const t = harness({ budgetMs: 100 }, () => { calls++; throw new Error('upstream down'); });
    await t.start();
    await expect.poll(() => t.h.disabled, { timeout: 2000, interval: 5 }).toBe(true);
    expect(calls).toBeGreaterThan(2);
    expect(t.h.count).toBe(0); // reset after each failure
    expect(t.exits).toEqual([]);
    await t.stop();
  });

  it('stops probing at shutdown', async () => {
    let calls = 0;
    const t = harness({ budgetMs: 10_000 }, () => { calls++; throw new Error('down'); });
    await t.start();
    await expect.poll(() => calls, { timeout: 2000, interval: 5 }).toBeGreaterThan(0);
    await t.stop();
    const n = calls;
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toBe(n);
    expect(t.h.disabled).toBe(true);
  });

  it('passes other queries straight on, synchronously', () => {
    const h = new LoopHandler('.', '1.2.', ':53', () => { throw new Error('no'); });
    let got: Request | undefined;
    const next: Next = (req) => { got = req; return req.reply(); };
    const req = makeRequest('example.org.', Type.A);
    const r = h.serveDNS(req, next);
    expect(r).not.toBeInstanceOf(Promise);
    expect(got).toBe(req);
    // Other HINFO names are not counted either.
    for (let i = 0; i < 5; i++) h.serveDNS(makeRequest('other.', Type.HINFO), next);
    expect(h.count).toBe(0);
  });
});

describe('loop: reply memo terms', () => {
  it('turns the memo off for its probe (every sighting must be counted), only for it', () => {
    const h = new LoopHandler('.', '1.2.', ':53', () => { throw new Error('no'); });
    expect(h.memo).toBe(true);
    const next: Next = (req) => req.reply();
    const probe = makeRequest('1.2.', Type.HINFO);
    h.serveDNS(probe, next);
    expect(probe.memoOff).toBe(true);
    const again = makeRequest('1.2.', Type.HINFO, { id: 7 });
    h.serveDNS(again, next);
    expect(again.memoOff).toBe(true);
    for (const req of [makeRequest('3.4.', Type.HINFO), makeRequest('1.2.', Type.A), makeRequest('example.org.', Type.A)]) {
      h.serveDNS(req, next);
      expect(req.memoOff).toBe(false);
    }
  });
});

describe('loop: README', () => {
  it('every corefile example parses', () => {
    const md = readFileSync(new URL('./README.md', import.meta.url), 'utf8');
    const blocks = [...md.matchAll(/(?:```|~~~) ?corefile\n([\s\S]*?)(?:```|~~~)/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThan(0);
    for (const b of blocks) for (const c of controllers(b)) plugin.parse(c);
  });
});
