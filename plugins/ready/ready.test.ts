import { afterEach, describe, expect, it } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import type { HttpMux } from '../../src/server/http.ts';
import { fakeEnv } from '../../test/helpers.ts';
import { plugin, type Monitor, type ReadyConfig } from './index.ts';

function controllers(text: string): Controller[] {
  const cf = parseCorefile(text, { file: 'Corefile', env: {} });
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === 'ready').map((d) => new Controller(d, b)));
}
const parse = (directive: string): ReadyConfig => plugin.parse(controllers(`. {\n${directive}\n}\n`)[0]!);

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanup) await f();
  cleanup = [];
});

async function start(monitor: Monitor = 'until-ready') {
  const f = fakeEnv();
  f.env.log = f.log.child('plugin/ready');
  plugin.setup({ addr: '127.0.0.1:0', monitor }, f.env);
  const mux = f.muxes.get('127.0.0.1:0')!;
  await mux.listen();
  cleanup.push(() => mux.close());
  return { ...f, mux };
}

async function get(mux: HttpMux, path = '/ready'): Promise<[number, string]> {
  const res = await fetch(`http://127.0.0.1:${mux.port}${path}`);
  return [res.status, await res.text()];
}

describe('ready: parse', () => {
  it.each<[string, ReadyConfig]>([
    ['ready', { addr: ':8181', monitor: 'until-ready' }],
    ['ready localhost:8091', { addr: 'localhost:8091', monitor: 'until-ready' }],
    ['ready {\n monitor continuously\n}', { addr: ':8181', monitor: 'continuously' }],
    ['ready :8181 {\n monitor continuously\n monitor until-ready\n}', { addr: ':8181', monitor: 'until-ready' }],
  ])('%j', (text, want) => {
    expect(parse(text)).toEqual(want);
  });

  it.each([
    ['ready bla', "plugin/ready: Corefile:2 - Error during parsing: invalid address 'bla': want [HOST]:PORT"],
    ['ready :8181 b', "plugin/ready: Corefile:2 - Error during parsing: Wrong argument count or unexpected line ending after 'b'"],
    ['ready {\n monitor\n}', "plugin/ready: Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'monitor'"],
    ['ready {\n monitor 404\n}', "plugin/ready: Corefile:3 - Error during parsing: unknown monitor '404' (want until-ready or continuously)"],
    ['ready {\n monitor continuously extra\n}', "plugin/ready: Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'extra'"],
    ['ready {\n monitro continuously\n}', "plugin/ready: Corefile:3 - Error during parsing: unknown property 'monitro'"],
  ])('rejects %j', (text, message) => {
    expect(() => parse(text)).toThrow(message);
  });
});

describe('ready: endpoint', () => {
  it('is ready when no plugin has a readiness check', async () => {
    const s = await start();
    expect(await get(s.mux)).toEqual([200, 'OK']);
  });

  it('lists the plugins not ready, sorted and comma separated, and logs them', async () => {
    const s = await start();
    const state = { kubernetes: false, cache: false };
    // Registered after ready's setup, as plugins later in the chain do.
    s.env.readiness('kubernetes', () => state.kubernetes);
    s.env.readiness('cache', () => state.cache);
    expect(await get(s.mux)).toEqual([503, 'cache,kubernetes']);
    state.cache = true;
    expect(await get(s.mux)).toEqual([503, 'kubernetes']);
    state.kubernetes = true;
    expect(await get(s.mux)).toEqual([200, 'OK']);
    expect(s.log.lines).toEqual([
      '[INFO] plugin/ready: Plugins not ready: "cache,kubernetes"',
      '[INFO] plugin/ready: Plugins not ready: "kubernetes"',
    ]);
  });

  it('stops asking a plugin once it was ready (until-ready)', async () => {
    const s = await start('until-ready');
    let ready = true;
    let asked = 0;
    s.env.readiness('kubernetes', () => { asked++; return ready; });
    expect(await get(s.mux)).toEqual([200, 'OK']);
    ready = false;
    expect(await get(s.mux)).toEqual([200, 'OK']);
    expect(asked).toBe(1);
  });

  it('keeps asking with monitor continuously', async () => {
    const s = await start('continuously');
    let ready = true;
    s.env.readiness('kubernetes', () => ready);
    expect(await get(s.mux)).toEqual([200, 'OK']);
    ready = false;
    expect(await get(s.mux)).toEqual([503, 'kubernetes']);
  });

  it('counts a check that throws as not ready', async () => {
    const s = await start();
    s.env.readiness('broken', () => { throw new Error('boom'); });
    expect(await get(s.mux)).toEqual([503, 'broken']);
  });

  it('answers 503 while the instance drains (lameduck)', async () => {
    const s = await start();
    (s.instance as { draining: boolean }).draining = true;
    expect(await get(s.mux)).toEqual([503, 'Shutting down']);
  });

  it('removes its route on final shutdown', async () => {
    const s = await start();
    for (const h of s.finalShutdown) await h();
    expect(s.mux.routeCount).toBe(0);
    expect((await get(s.mux))[0]).toBe(404);
  });
});
