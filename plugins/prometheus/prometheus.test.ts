import { afterEach, describe, expect, it } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import type { BlockInfo } from '../../src/plugin.ts';
import { version } from '../../src/version.ts';
import { fakeEnv } from '../../test/helpers.ts';
import { plugin, type PrometheusConfig } from './index.ts';

function controllers(text: string): Controller[] {
  const cf = parseCorefile(text, { file: 'Corefile', env: { PORT: '9253' } });
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === 'prometheus').map((d) => new Controller(d, b)));
}
const parse = (directive: string): PrometheusConfig => plugin.parse(controllers(`. {\n${directive}\n}\n`)[0]!);

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanup) await f();
  cleanup = [];
});

const block = (o: Partial<BlockInfo> = {}): BlockInfo => ({
  zones: ['cluster.local.', 'in-addr.arpa.'], servers: ['dns://:53'], index: 0, plugins: ['errors', 'kubernetes', 'prometheus'], ...o,
});

async function scrape(port: number): Promise<{ status: number; type: string | null; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

describe('prometheus: parse', () => {
  it.each<[string, PrometheusConfig]>([
    ['prometheus', { addr: 'localhost:9153' }],
    ['prometheus :9153', { addr: ':9153' }],
    ['prometheus localhost:{$PORT}', { addr: 'localhost:9253' }],
    ['prometheus 0.0.0.0:9153 {\n runtime_metrics\n}', { addr: '0.0.0.0:9153' }],
  ])('%j', (text, want) => {
    expect(parse(text)).toEqual(want);
  });

  it.each([
    ['prometheus :9153 :9154', "plugin/prometheus: Corefile:2 - Error during parsing: Wrong argument count or unexpected line ending after ':9154'"],
    ['prometheus 9153', "plugin/prometheus: Corefile:2 - Error during parsing: invalid address '9153': want [HOST]:PORT"],
    ['prometheus {\n tls /etc/coredns/web-config.yml\n}', 'plugin/prometheus: Corefile:3 - Error during parsing: serving metrics over TLS is not supported by clusterdns'],
    ['prometheus {\n runtime_metrics all\n}', "plugin/prometheus: Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'all'"],
    ['prometheus {\n path /m\n}', "plugin/prometheus: Corefile:3 - Error during parsing: unknown property 'path'"],
  ])('rejects %j', (text, message) => {
    expect(() => parse(text)).toThrow(message);
  });
});

describe('prometheus: setup', () => {
  async function start(over: Parameters<typeof fakeEnv>[0] = {}) {
    const f = fakeEnv({ block: block(), ...over });
    plugin.setup({ addr: '127.0.0.1:0' }, f.env);
    const mux = f.muxes.get('127.0.0.1:0');
    if (mux) { await mux.listen(); cleanup.push(() => mux.close()); }
    return { ...f, mux };
  }

  it('serves the registry on /metrics in the text format and turns on server metrics', async () => {
    const s = await start();
    expect(s.serverMetrics.on).toBe(true);
    const r = await scrape(s.mux!.port);
    expect(r.status).toBe(200);
    expect(r.type).toBe(s.env.metrics.contentType);
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.body).toContain(`coredns_build_info{version="${version}",revision="",goversion="node ${process.version}"} 1`);
    expect(r.body).toMatch(/^# TYPE coredns_build_info gauge$/m);
    // Node's runtime metrics stand in for Go's.
    expect(r.body).toMatch(/^process_cpu_seconds_total /m);
    expect(r.body).toMatch(/^nodejs_eventloop_lag_seconds /m);
  });

  it('marks each plugin enabled per server and zone', async () => {
    const s = await start();
    const body = (await scrape(s.mux!.port)).body;
    const enabled = body.split('\n').filter((l) => l.startsWith('coredns_plugin_enabled{')).sort();
    expect(enabled).toEqual([
      'coredns_plugin_enabled{server="dns://:53",zone="cluster.local.",view="",name="errors"} 1',
      'coredns_plugin_enabled{server="dns://:53",zone="cluster.local.",view="",name="kubernetes"} 1',
      'coredns_plugin_enabled{server="dns://:53",zone="cluster.local.",view="",name="prometheus"} 1',
      'coredns_plugin_enabled{server="dns://:53",zone="in-addr.arpa.",view="",name="errors"} 1',
      'coredns_plugin_enabled{server="dns://:53",zone="in-addr.arpa.",view="",name="kubernetes"} 1',
      'coredns_plugin_enabled{server="dns://:53",zone="in-addr.arpa.",view="",name="prometheus"} 1',
    ]);
  });

  it('adds the blocks of one configuration and forgets the previous configuration', async () => {
    const s = await start();
    const second = fakeEnv({ instance: s.env.instance, metrics: s.env.metrics, http: s.env.http,
      block: block({ index: 1, zones: ['.'], servers: ['dns://:5353'], plugins: ['prometheus'] }) });
    plugin.setup({ addr: '127.0.0.1:0' }, second.env);
    let lines = (await scrape(s.mux!.port)).body.split('\n').filter((l) => l.startsWith('coredns_plugin_enabled{'));
    expect(lines).toHaveLength(7);
    expect(lines).toContain('coredns_plugin_enabled{server="dns://:5353",zone=".",view="",name="prometheus"} 1');

    // A reload: a new instance on the same (process-wide) registry, without kubernetes.
    const reloaded = fakeEnv({ metrics: s.env.metrics, http: s.env.http, block: block({ plugins: ['prometheus'] }) });
    plugin.setup({ addr: '127.0.0.1:0' }, reloaded.env);
    lines = (await scrape(s.mux!.port)).body.split('\n').filter((l) => l.startsWith('coredns_plugin_enabled{'));
    expect(lines.sort()).toEqual([
      'coredns_plugin_enabled{server="dns://:53",zone="cluster.local.",view="",name="prometheus"} 1',
      'coredns_plugin_enabled{server="dns://:53",zone="in-addr.arpa.",view="",name="prometheus"} 1',
    ]);
    // The old instance's final shutdown must not take the new instance's route away.
    // (second shares s's instance, so its hooks run with s's.)
    for (const h of [...s.finalShutdown, ...second.finalShutdown]) await h();
    expect((await scrape(s.mux!.port)).status).toBe(200);
    for (const h of reloaded.finalShutdown) await h();
    expect((await scrape(s.mux!.port)).status).toBe(404);
  });
});
