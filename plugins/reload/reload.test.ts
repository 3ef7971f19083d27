import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { Metrics } from '../../src/metrics.ts';
import { fakeEnv } from '../../test/helpers.ts';
import { checkPeriod, corefileDigest, plugin, type ReloadConfig } from './index.ts';

/**
 * Replace a file's contents in one step (write a sibling, rename over it), as editors and ConfigMap
 * updates do: a check every few ms must never see a half-written file and count it as a change.
 */
function replaceFile(p: string, text: string): void {
  writeFileSync(p + '.tmp', text);
  renameSync(p + '.tmp', p);
}

const dir = mkdtempSync(path.join(tmpdir(), 'clusterdns-reload-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
function file(text: string): string {
  const p = path.join(dir, `Corefile-${++seq}`);
  writeFileSync(p, text);
  return p;
}
const sha512 = (p: string) => createHash('sha512').update(readFileSync(p)).digest('hex');

function controllers(text: string): Controller[] {
  const cf = parseCorefile(text, { file: 'Corefile', env: {} });
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === 'reload').map((d) => new Controller(d, b)));
}
const parse = (directive: string): ReloadConfig => plugin.parse(controllers(`. {\n${directive}\n}\n`)[0]!);

const fast: ReloadConfig = { intervalMs: 15, jitterMs: 0 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Set up reload over `files` with a fake instance whose reload() runs `onReload`. */
async function harness(files: string[], onReload: () => Promise<void> = async () => undefined, metrics = new Metrics()) {
  const f = fakeEnv({ corefile: { file: files[0]!, files }, metrics });
  let reloads = 0;
  f.env.instance = { draining: false, query: async () => { throw new Error('no'); }, reload: async () => { reloads++; await onReload(); } };
  expect(await plugin.setup(fast, f.env)).toBeUndefined();
  for (const s of f.startup) await s();
  const stop = async () => { for (const s of f.finalShutdown) await s(); };
  const metric = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values;
  return { ...f, reloads: () => reloads, stop, metric };
}

describe('reload: parse', () => {
  it('has CoreDNS defaults and limits', () => {
    expect(parse('reload')).toEqual({ intervalMs: 30_000, jitterMs: 15_000 });
    expect(parse('reload 10s')).toEqual({ intervalMs: 10_000, jitterMs: 5000 });
    expect(parse('reload 1m 20s')).toEqual({ intervalMs: 60_000, jitterMs: 20_000 });
    expect(parse('reload 2s 1s')).toEqual({ intervalMs: 2000, jitterMs: 1000 });
    expect(parse('reload 10s 20s')).toEqual({ intervalMs: 10_000, jitterMs: 5000 });
  });

  it('rejects what CoreDNS rejects', () => {
    expect(() => parse('reload 1s')).toThrow(/plugin\/reload: Corefile:2 - Error during parsing: interval value must be greater or equal to 2s/);
    expect(() => parse('reload 10s 500ms')).toThrow(/jitter value must be greater or equal to 1s/);
    expect(() => parse('reload 10s 0s')).toThrow(/jitter value must be greater or equal to 1s/);
    expect(() => parse('reload 10s 2s 1s')).toThrow(/Wrong argument count/);
    expect(() => parse('reload often')).toThrow(/invalid duration 'often'/);
  });

  it('spreads the period over INTERVAL ± JITTER/2', () => {
    const cfg = { intervalMs: 30_000, jitterMs: 15_000 };
    expect(checkPeriod(cfg, () => 0)).toBe(22_500);
    expect(checkPeriod(cfg, () => 0.5)).toBe(30_000);
    expect(checkPeriod(cfg, () => 0.9999)).toBeLessThan(37_500);
    expect(checkPeriod({ intervalMs: 20, jitterMs: 0 })).toBe(20);
  });
});

describe('reload: checking', () => {
  it('logs and exports the running SHA512, then reloads when the file changes', async () => {
    const p = file('. {\n    whoami\n}\n');
    const t = await harness([p]);
    expect(t.log.lines).toContain(`[INFO] Running configuration SHA512 = ${sha512(p)}`);
    expect(await t.metric('coredns_reload_version_info')).toEqual([{ value: 1, labels: { hash: 'sha512', value: sha512(p) } }]);
    await sleep(50);
    expect(t.reloads()).toBe(0);
    replaceFile(p, '. {\n    whoami\n    log\n}\n');
    await expect.poll(t.reloads, { timeout: 2000, interval: 5 }).toBe(1);
    await sleep(50);
    expect(t.reloads()).toBe(1); // the same contents are not reloaded twice
    await t.stop();
  });

  it('watches imported files too', async () => {
    const main = file('import extra\n');
    const extra = file('. {\n    whoami\n}\n');
    const t = await harness([main, extra]);
    expect(t.log.lines.find((l) => l.includes('SHA512'))).toBeDefined();
    replaceFile(extra, '. {\n    log\n}\n');
    await expect.poll(t.reloads, { timeout: 2000, interval: 5 }).toBe(1);
    await t.stop();
  });

  it('counts failed reloads, keeps running, and retries only when the contents change again', async () => {
    const p = file('. {\n    whoami\n}\n');
    const t = await harness([p], async () => { throw new Error('plugin/bogus: Corefile:2 - Error during parsing: unknown directive'); });
    const before = sha512(p);
    replaceFile(p, '. {\n    bogus\n}\n');
    await expect.poll(t.reloads, { timeout: 2000, interval: 5 }).toBe(1);
    await expect.poll(async () => (await t.metric('coredns_reload_failed_total'))[0]?.value, { timeout: 1000 }).toBe(1);
    expect(t.log.lines).toContain('[ERROR] Corefile changed but reload failed: plugin/bogus: Corefile:2 - Error during parsing: unknown directive');
    await sleep(50);
    expect(t.reloads()).toBe(1);
    // The running configuration is still the old one.
    expect(await t.metric('coredns_reload_version_info')).toEqual([{ value: 1, labels: { hash: 'sha512', value: before } }]);
    replaceFile(p, '. {\n    bogus2\n}\n');
    await expect.poll(t.reloads, { timeout: 2000, interval: 5 }).toBe(2);
    await expect.poll(async () => (await t.metric('coredns_reload_failed_total'))[0]?.value, { timeout: 1000 }).toBe(2);
    await t.stop();
  });

  it('stops checking at final shutdown and hands the version metric to its successor', async () => {
    const metrics = new Metrics();
    const p = file('. {\n    whoami\n}\n');
    const old = await harness([p], async () => undefined, metrics);
    await old.stop();
    replaceFile(p, '. {\n    whoami\n    log\n}\n');
    await sleep(60);
    expect(old.reloads()).toBe(0);
    expect(await old.metric('coredns_reload_version_info')).toEqual([]);

    // A successor starts before the old one shuts down (Runtime.replace): its hash must stay.
    const next = await harness([p], async () => undefined, metrics);
    const older = await harness([p], async () => undefined, metrics);
    const newest = await harness([p], async () => undefined, metrics);
    await older.stop();
    expect(await newest.metric('coredns_reload_version_info')).toEqual([{ value: 1, labels: { hash: 'sha512', value: sha512(p) } }]);
    await next.stop();
    await newest.stop();
  });

  it('runs one checker per configuration, whichever blocks list reload', async () => {
    const p = file('. {\n    reload\n}\nexample.org {\n    reload\n}\n');
    const f = fakeEnv({ corefile: { file: p, files: [p] } });
    let reloads = 0;
    f.env.instance = { draining: false, query: async () => { throw new Error('no'); }, reload: async () => { reloads++; } };
    await plugin.setup(fast, f.env);
    await plugin.setup(fast, { ...f.env, block: { ...f.env.block, index: 1 } });
    expect(f.startup).toHaveLength(1);
    for (const s of f.startup) await s();
    replaceFile(p, '. {\n    reload\n}\n');
    await expect.poll(() => reloads, { timeout: 2000, interval: 5 }).toBe(1);
    await sleep(40);
    expect(reloads).toBe(1);
    for (const s of f.finalShutdown) await s();
  });

  it('does not reload while the server is draining', async () => {
    const p = file('. {\n    whoami\n}\n');
    const f = fakeEnv({ corefile: { file: p, files: [p] } });
    let reloads = 0;
    f.env.instance = { draining: true, query: async () => { throw new Error('no'); }, reload: async () => { reloads++; } };
    await plugin.setup(fast, f.env);
    for (const s of f.startup) await s();
    replaceFile(p, '. {\n    log\n}\n');
    await sleep(60);
    expect(reloads).toBe(0);
    for (const s of f.finalShutdown) await s();
  });

  it('hashes a lone Corefile as its bytes, and imports by path and contents', () => {
    const data = new TextEncoder().encode('. {\n}\n');
    expect(corefileDigest([{ file: 'a', data }])).toBe(createHash('sha512').update(data).digest('hex'));
    const two = corefileDigest([{ file: 'a', data }, { file: 'b', data }]);
    expect(two).not.toBe(corefileDigest([{ file: 'a', data }, { file: 'c', data }]));
  });
});

describe('reload: README', () => {
  it('every corefile example parses', () => {
    const md = readFileSync(new URL('./README.md', import.meta.url), 'utf8');
    const blocks = [...md.matchAll(/(?:```|~~~) ?corefile\n([\s\S]*?)(?:```|~~~)/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThan(0);
    for (const b of blocks) for (const c of controllers(b)) plugin.parse(c);
  });
});
