// `-workers N` end to end: the built CLI with two worker threads on SO_REUSEPORT sockets and a
// kubernetes zone from manifests, held once in the main thread. Queries land on both workers; one
// /metrics sums them; changes, reload and SIGTERM (lameduck, drain, exit 0) work as with one thread.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode } from '../../src/dns/codec.ts';
import { type Msg, Rcode, Type } from '../../src/dns/types.ts';
import { tcpExchange, udpExchange } from '../client.ts';
import { queryBytes } from '../helpers.ts';
import { namespace, service } from '../kubeapi/objects.ts';
import { randomPort, runCli, tempDir, writeCorefile, type Running } from './cli.ts';

const LAMEDUCK_MS = 600;

function writeManifests(dir: string, extra: Array<[string, string]> = []): void {
  const items = [namespace('apps')];
  for (let i = 0; i < 20; i++) items.push(service('apps', `svc-${i}`, { clusterIP: `10.96.1.${i + 1}`, ports: [{ name: 'http', port: 80 }] }));
  for (const [name, ip] of extra) items.push(service('apps', name, { clusterIP: ip }));
  writeFileSync(join(dir, 'apps.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
}

function corefile(port: number, http: { health: number; ready: number; metrics: number }, manifests: string, ttl = 5, extra = ''): string {
  return `cluster.local:${port} {
  bind 127.0.0.1
  errors${extra}
  health 127.0.0.1:${http.health} {
    lameduck ${LAMEDUCK_MS}ms
  }
  ready 127.0.0.1:${http.ready}
  prometheus 127.0.0.1:${http.metrics}
  kubernetes cluster.local {
    manifests ${manifests}
    ttl ${ttl}
  }
}
`;
}

/** Sum of a metric's series (optionally only those whose label text matches). */
function metricSum(text: string, name: string, labels?: RegExp): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (labels && !labels.test(line)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe('-workers 2 (built CLI, kubernetes manifests)', () => {
  let srv: Running;
  let port: number;
  let dir: string;
  let conf: string;
  const http = { health: randomPort(), ready: randomPort(), metrics: randomPort() };
  /** Every DNS query this suite sent (each got an answer), to check the metrics total. */
  let sent = 0;

  const udp = async (name: string, type = Type.A): Promise<Msg> => {
    sent++;
    const r = await udpExchange(port, queryBytes(name, type), { timeoutMs: 2000 });
    if (!r) throw new Error(`no UDP answer for ${name}`);
    return decode(r);
  };
  const tcp = async (name: string, type = Type.A): Promise<Msg> => {
    sent++;
    const r = await tcpExchange(port, queryBytes(name, type));
    if (!r) throw new Error(`no TCP answer for ${name}`);
    return decode(r);
  };
  const metrics = async () => (await fetch(`http://127.0.0.1:${http.metrics}/metrics`)).text();

  beforeAll(async () => {
    dir = tempDir();
    writeManifests(dir);
    port = randomPort();
    conf = writeCorefile(dir, corefile(port, http, join(dir, 'apps.json')));
    srv = await runCli(['-conf', conf, '-workers', '2'], { ready: /clusterdns-/ });
  });
  afterAll(async () => { await srv?.stop('SIGKILL'); });

  it('answers over UDP and TCP, and the kernel spreads queries over both workers', async () => {
    for (let i = 0; i < 60; i++) {
      const m = await udp(`svc-${i % 20}.apps.svc.cluster.local.`);
      expect(m.rcode).toBe(Rcode.NOERROR);
      expect(m.answer[0]!.data).toBe(`10.96.1.${(i % 20) + 1}`);
    }
    for (let i = 0; i < 20; i++) {
      const m = await tcp(`svc-${i}.apps.svc.cluster.local.`);
      expect(m.answer[0]!.data).toBe(`10.96.1.${i + 1}`);
    }
    expect((await udp('nope.apps.svc.cluster.local.')).rcode).toBe(Rcode.NXDOMAIN);
    const text = await metrics();
    // Each query came from a new socket (a new source port): with two workers both got some.
    expect(metricSum(text, 'clusterdns_worker_dns_requests_total', /worker="0"/)).toBeGreaterThan(0);
    expect(metricSum(text, 'clusterdns_worker_dns_requests_total', /worker="1"/)).toBeGreaterThan(0);
    expect(metricSum(text, 'coredns_dns_requests_total', /proto="tcp"/)).toBe(20);
    // The zone is held once: objects counted in main only.
    expect(metricSum(text, 'coredns_kubernetes_objects', /kind="Service"/)).toBe(20);
  });

  it('one /health and one /ready for the process', async () => {
    expect((await fetch(`http://127.0.0.1:${http.health}/health`)).status).toBe(200);
    const r = await fetch(`http://127.0.0.1:${http.ready}/ready`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('OK');
  });

  it('a manifest change reaches every worker within seconds', async () => {
    writeManifests(dir, [['added', '10.96.9.9']]);
    const t0 = Date.now();
    let seen = 0;
    // Until 20 answers in a row (over both workers) carry the new Service.
    while (seen < 20) {
      if (Date.now() - t0 > 10_000) throw new Error('change not visible after 10 s');
      const m = await udp('added.apps.svc.cluster.local.');
      if (m.rcode === Rcode.NOERROR && m.answer[0]?.data === '10.96.9.9') seen++;
      else { seen = 0; await new Promise((r) => setTimeout(r, 50)); }
    }
  });

  it('one /metrics with the totals of every worker', async () => {
    const text = await metrics();
    expect(metricSum(text, 'coredns_dns_requests_total')).toBe(sent);
    expect(metricSum(text, 'clusterdns_worker_dns_requests_total')).toBe(sent);
    expect(metricSum(text, 'coredns_dns_responses_total')).toBe(sent);
    expect(metricSum(text, 'coredns_dns_request_duration_seconds_count')).toBe(sent);
    // Process-level and build metrics appear once, not once per worker.
    expect(metricSum(text, 'coredns_build_info')).toBe(1);
    expect(text).toContain('process_resident_memory_bytes');
  });

  it('SIGUSR1 reloads every worker with the new Corefile', async () => {
    writeFileSync(conf, corefile(port, http, join(dir, 'apps.json'), 42));
    srv.proc.kill('SIGUSR1');
    const t0 = Date.now();
    let seen = 0;
    while (seen < 20) {
      if (Date.now() - t0 > 10_000) throw new Error(`reload not visible after 10 s:\n${srv.output()}`);
      const m = await udp('svc-1.apps.svc.cluster.local.');
      if (m.answer[0]?.ttl === 42) seen++;
      else { seen = 0; await new Promise((r) => setTimeout(r, 50)); }
    }
    expect(srv.output()).toContain('SIGUSR1: configuration reloaded');
    expect((await fetch(`http://127.0.0.1:${http.ready}/ready`)).status).toBe(200);
  });

  it('a reload that fails in the workers keeps the running configuration everywhere', async () => {
    // hosts parses (in main and workers alike) but cannot be set up: it runs in workers only.
    writeFileSync(conf, corefile(port, http, join(dir, 'apps.json'), 7, '\n  hosts /etc/hostname/not-a-dir'));
    srv.proc.kill('SIGUSR1');
    const t0 = Date.now();
    while (!/reload failed, keeping the running configuration/.test(srv.output())) {
      if (Date.now() - t0 > 10_000) throw new Error(`no reload failure after 10 s:\n${srv.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    for (let i = 0; i < 20; i++) expect((await udp('svc-1.apps.svc.cluster.local.')).answer[0]!.ttl).toBe(42);
    // The running configuration's watch still feeds the zone.
    writeManifests(dir, [['added', '10.96.9.9'], ['after', '10.96.9.10']]);
    const t1 = Date.now();
    for (let seen = 0; seen < 20;) {
      if (Date.now() - t1 > 10_000) throw new Error('change not visible after a failed reload');
      const m = await udp('after.apps.svc.cluster.local.');
      if (m.answer[0]?.data === '10.96.9.10') seen++;
      else { seen = 0; await new Promise((r) => setTimeout(r, 50)); }
    }
    expect((await fetch(`http://127.0.0.1:${http.ready}/ready`)).status).toBe(200);
  });

  it('SIGTERM: answers during lameduck (not ready), then drains and exits 0', async () => {
    const t0 = Date.now();
    const exited = srv.stop('SIGTERM');
    await new Promise((r) => setTimeout(r, LAMEDUCK_MS / 3));
    expect((await udp('svc-2.apps.svc.cluster.local.')).rcode).toBe(Rcode.NOERROR);
    expect((await fetch(`http://127.0.0.1:${http.ready}/ready`)).status).toBe(503);
    expect(await exited).toBe(0);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(LAMEDUCK_MS - 50);
    expect(took).toBeLessThan(LAMEDUCK_MS + 5_000);
    expect(srv.output()).toContain('Going into lameduck mode');
  });
});

describe('-workers 1 (the default)', () => {
  it('is the single-threaded server: no workers, no worker metrics, same answers', async () => {
    const dir = tempDir();
    writeManifests(dir);
    const port = randomPort();
    const http = { health: randomPort(), ready: randomPort(), metrics: randomPort() };
    const conf = writeCorefile(dir, corefile(port, http, join(dir, 'apps.json')));
    const srv = await runCli(['-conf', conf, '-workers', '1'], { ready: /clusterdns-/ });
    try {
      const r = await udpExchange(port, queryBytes('svc-3.apps.svc.cluster.local.', Type.A));
      expect(decode(r!).answer[0]!.data).toBe('10.96.1.4');
      const text = await (await fetch(`http://127.0.0.1:${http.metrics}/metrics`)).text();
      expect(text).not.toContain('clusterdns_worker_');
      expect(metricSum(text, 'coredns_dns_requests_total')).toBe(1);
      expect(srv.output()).not.toContain('workers serving');
    } finally {
      expect(await srv.stop('SIGTERM')).toBe(0);
    }
  });
});
