// autopath: parsing, setup (files, the peer), and a chain with the real kubernetes handler.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { type Msg, Rcode, Type } from '../../src/dns/types.ts';
import type { Handler, Next } from '../../src/plugin.ts';
import { fakeEnv, makeRequest, rr, serve, sortAndCheck } from '../../test/helpers.ts';
import { defaultConfig } from '../kubernetes/config.ts';
import { KubernetesHandler } from '../kubernetes/kubernetes.ts';
import { KubeZone } from '../kubernetes/zone.ts';
import { type AutopathConfig, plugin, setupAutopath } from './index.ts';

/** Fenced corefile blocks of a README (test/readme.test.ts reads them the same way). */
function corefileExamples(markdown: string): string[] {
  return [...markdown.matchAll(/^(```|~~~)\s*corefile\s*\n([\s\S]*?)^\1\s*$/gm)].map((m) => m[2]!);
}

function controllers(text: string, name = 'autopath'): Controller[] {
  const cf = parseCorefile(text, { file: 'Corefile', env: {} });
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === name).map((d) => new Controller(d, b)));
}
const parse = (directive: string, keys = '.'): AutopathConfig => plugin.parse(controllers(`${keys} {\n${directive}\n}\n`)[0]!);

describe('autopath: parse', () => {
  it.each<[string, string, Partial<AutopathConfig>]>([
    ['autopath @kubernetes', '.', { zones: ['.'], plugin: 'kubernetes', resolvConf: null }],
    ['autopath /etc/resolv.conf', 'cluster.local example.org', { zones: ['cluster.local.', 'example.org.'], plugin: null, resolvConf: '/etc/resolv.conf' }],
    ['autopath Cluster.Local. 10.0.0.0/24 @kubernetes', '.', { zones: ['cluster.local.', '0.0.10.in-addr.arpa.'], plugin: 'kubernetes' }],
  ])('%s (keys %s)', (directive, keys, want) => {
    expect(parse(directive, keys)).toMatchObject({ ...want, file: 'Corefile', line: 2 });
  });

  it.each([
    ['autopath', 'plugin/autopath: Corefile:2 - Error during parsing: no resolv-conf specified'],
    ['autopath @', "plugin/autopath: Corefile:2 - Error during parsing: no plugin named after '@'"],
    ['autopath bad..zone @kubernetes', 'plugin/autopath: Corefile:2 - Error during parsing: zone is not a valid domain name: bad..zone'],
    ['autopath @kubernetes {\n x\n}', "plugin/autopath: Corefile:3 - Error during parsing: unexpected block after 'autopath'"],
  ])('rejects %s', (directive, message) => {
    expect(() => parse(directive)).toThrow(message);
  });

  it('parses every example in its README (the readme test does too, once the plugin is registered)', () => {
    const examples = corefileExamples(readFileSync(join(import.meta.dirname, 'README.md'), 'utf8'));
    expect(examples.length).toBeGreaterThan(0);
    for (const text of examples) {
      const cs = controllers(text);
      expect(cs).toHaveLength(1);
      expect(() => plugin.parse(cs[0]!)).not.toThrow();
    }
  });
});

describe('autopath: setup', () => {
  const dir = mkdtempSync(join(tmpdir(), 'autopath-'));

  it('reads the search list of a resolv.conf file', async () => {
    const file = join(dir, 'resolv.conf');
    writeFileSync(file, 'nameserver 10.0.0.10\nsearch a.example b.example\n');
    const { env } = fakeEnv();
    const h = await setupAutopath(parse(`autopath ${file}`), env);
    const asked: string[] = [];
    const next: Next = (req) => { asked.push(req.name); return req.reply(Rcode.NXDOMAIN); };
    await serve(h, makeRequest('x.a.example.', Type.A), next);
    expect(asked).toEqual(['x.a.example.', 'x.b.example.', 'x.']);
  });

  it('fails with the file and line when the file cannot be read', async () => {
    const { env } = fakeEnv();
    await expect(setupAutopath(parse(`autopath ${join(dir, 'missing')}`), env))
      .rejects.toThrow(/^plugin\/autopath: Corefile:2 - Error during parsing: failed to parse ".*missing": ENOENT/);
  });

  it('warns when the named plugin is not in the block, and then does nothing', async () => {
    const { env, log, startup } = fakeEnv();
    const h = await setupAutopath(parse('autopath @kubernetes'), env, { hostResolvConf: join(dir, 'none') });
    for (const f of startup) await f();
    expect(log.lines).toContain('[WARNING] no plugin "kubernetes" in this server block: autopath does nothing');
    const seen: unknown[] = [];
    const req = makeRequest('x.default.svc.cluster.local.', Type.A);
    await serve(h, req, (r) => { seen.push(r); return r.reply(Rcode.NXDOMAIN); });
    expect(seen).toEqual([req]);
  });

  it('fails at startup when the named plugin cannot tell namespaces', async () => {
    const { env, peers, startup } = fakeEnv();
    const whoami: Handler = { name: 'whoami', serveDNS: (req) => req.reply() };
    peers.set('whoami', whoami);
    await setupAutopath(parse('autopath @whoami'), env);
    await expect((async () => { for (const f of startup) await f(); })())
      .rejects.toThrow('plugin/autopath: Corefile:2 - Error during parsing: whoami does not implement the AutoPather interface');
  });

  it('registers coredns_autopath_success_total{server}', async () => {
    const { env } = fakeEnv();
    await setupAutopath(parse('autopath @kubernetes'), env);
    expect(await env.metrics.text()).toContain('# TYPE coredns_autopath_success_total counter');
  });
});

describe('autopath @kubernetes with the kubernetes handler', () => {
  /** default and other-ns each with my-svc; the client pod 10.244.0.7 in default. */
  function kube(): KubernetesHandler {
    const zone = new KubeZone({ pods: true });
    for (const ns of ['default', 'other-ns']) zone.upsertNamespace({ name: ns, labels: {} });
    zone.upsertService({ namespace: 'default', name: 'my-svc', type: 'ClusterIP', clusterIPs: ['10.96.0.10'], externalName: '', ports: [], publishNotReadyAddresses: false });
    zone.upsertService({ namespace: 'other-ns', name: 'my-svc', type: 'ClusterIP', clusterIPs: ['10.96.0.20'], externalName: '', ports: [], publishNotReadyAddresses: false });
    zone.upsertPod({ namespace: 'default', name: 'client', ips: ['10.244.0.7'] });
    const cfg = { ...defaultConfig(['cluster.local.', 'in-addr.arpa.', 'ip6.arpa.']), pods: 'verified' as const };
    return new KubernetesHandler(cfg, zone);
  }

  async function chain() {
    const k = kube();
    const { env, peers, startup } = fakeEnv();
    const h = await setupAutopath(parse('autopath @kubernetes'), env, { hostResolvConf: '/nonexistent' });
    peers.set('kubernetes', k);
    for (const f of startup) await f();
    const upstream: string[] = [];
    // What forward would do for names outside the cluster.
    const forward: Next = (req) => {
      upstream.push(req.qname);
      const m: Msg = req.reply(req.name === 'api.example.com.' ? Rcode.NOERROR : Rcode.NXDOMAIN);
      if (req.name === 'api.example.com.' && req.qtype === Type.A) m.answer = [rr('api.example.com. 60 IN A 203.0.113.10')];
      return Promise.resolve(m);
    };
    const ask = (name: string, type = Type.A, remote = '10.244.0.7') =>
      serve(h, makeRequest(name, type, { remote }), (req) => k.serveDNS(req, forward));
    return { ask, upstream, k, metrics: env.metrics };
  }

  it('answers a short service name with one query', async () => {
    const { ask, upstream, metrics } = await chain();
    sortAndCheck(await ask('my-svc.default.svc.cluster.local.'), { rcode: Rcode.NOERROR, answer: ['my-svc.default.svc.cluster.local. 5 IN A 10.96.0.10'] });
    expect(upstream).toEqual([]);
    expect(await metrics.text()).toContain('coredns_autopath_success_total{server="dns://:53"} 1');
  });

  it('answers a namespace-qualified name from its first search expansion', async () => {
    const { ask } = await chain();
    sortAndCheck(await ask('my-svc.other-ns.default.svc.cluster.local.'), {
      rcode: Rcode.NOERROR,
      answer: ['my-svc.other-ns.default.svc.cluster.local. 5 IN CNAME my-svc.other-ns.svc.cluster.local.', 'my-svc.other-ns.svc.cluster.local. 5 IN A 10.96.0.20'],
    });
  });

  it('answers an external name from its first search expansion, asking upstream once', async () => {
    const { ask, upstream } = await chain();
    sortAndCheck(await ask('api.example.com.default.svc.cluster.local.'), {
      rcode: Rcode.NOERROR,
      answer: ['api.example.com.default.svc.cluster.local. 60 IN CNAME api.example.com.', 'api.example.com. 60 IN A 203.0.113.10'],
    });
    expect(upstream).toEqual(['api.example.com.']);
  });

  it('does nothing for a client whose address the pod watch does not know', async () => {
    const { ask, upstream } = await chain();
    sortAndCheck(await ask('api.example.com.default.svc.cluster.local.', Type.A, '10.244.9.9'), { rcode: Rcode.NXDOMAIN });
    expect(upstream).toEqual([]);
  });

  it('stops completing once the pod is gone or moved to another namespace (a reused address)', async () => {
    const { ask, k } = await chain();
    k.zone.deletePod('default', 'client');
    sortAndCheck(await ask('api.example.com.default.svc.cluster.local.'), { rcode: Rcode.NXDOMAIN });
    k.zone.upsertPod({ namespace: 'other-ns', name: 'new', ips: ['10.244.0.7'] });
    sortAndCheck(await ask('api.example.com.default.svc.cluster.local.'), { rcode: Rcode.NXDOMAIN });
    sortAndCheck(await ask('api.example.com.other-ns.svc.cluster.local.'), { rcode: Rcode.NOERROR });
  });
});
