// The zone's indexes and change tracking, driven through the ZoneSink interface the sources use.
import { describe, expect, it } from 'vitest';
import type { Kind, SlimEndpoint, SlimEndpointSlice, SlimPort, SlimService } from './objects.ts';
import { type Cell, KubeZone, type ProgrammingKind, type ZoneOptions, answered, dashedIP, endpointLabel, sameIgnoringChangeTime } from './zone.ts';

const NOW = 1_700_000_000_000;
const tcp = (name: string, port: number): SlimPort => ({ name, port, protocol: 'TCP' });

function svc(namespace: string, name: string, o: Partial<SlimService> = {}): SlimService {
  return { namespace, name, type: 'ClusterIP', clusterIPs: [], externalName: '', ports: [], publishNotReadyAddresses: false, ...o };
}
function ep(address: string, o: Partial<SlimEndpoint> = {}): SlimEndpoint {
  return { addresses: [address], ready: true, serving: true, terminating: false, ...o };
}
function slice(namespace: string, name: string, service: string, endpoints: SlimEndpoint[], o: Partial<SlimEndpointSlice> = {}): SlimEndpointSlice {
  return { namespace, name, service, addressType: 'IPv4', ports: [tcp('http', 80)], endpoints, ...o };
}

function zone(opts: ZoneOptions = {}) {
  const programmed: Array<[ProgrammingKind, number]> = [];
  const counts: Partial<Record<Kind, number>> = {};
  const z = new KubeZone({
    now: () => NOW, pods: true,
    onProgramming: (k, s) => programmed.push([k, s]),
    onCount: (k, n) => { counts[k] = n; },
    ...opts,
  });
  z.upsertNamespace({ name: 'ns', labels: {} });
  return { z, programmed, counts };
}

const view = (z: KubeZone, ns: string, name: string) => z.service(ns, name, []);
const deps = () => [] as Cell[];

describe('KubeZone: services and slices', () => {
  it('builds a view from a Service and its slices, in any arrival order', () => {
    const { z, counts } = zone();
    z.upsertEndpointSlice(slice('ns', 'web-1', 'web', [ep('10.1.0.1'), ep('10.1.0.2', { ready: false })]));
    expect(view(z, 'ns', 'web')).toBeUndefined();
    z.upsertService(svc('ns', 'web', { clusterIPs: ['None'] }));
    const v = view(z, 'ns', 'web')!;
    expect(v.kind).toBe('headless');
    expect(v.v4).toEqual(['10.1.0.1']);
    expect(v.endpoints.map((e) => e.name)).toEqual(['10-1-0-1']);
    expect(counts).toMatchObject({ Service: 1, EndpointSlice: 1, Namespace: 1 });
    // Deleting the Service keeps its slices for when it comes back.
    z.deleteService('ns', 'web');
    expect(view(z, 'ns', 'web')).toBeUndefined();
    expect(counts.Service).toBe(0);
    z.upsertService(svc('ns', 'web', { clusterIPs: ['None'] }));
    expect(view(z, 'ns', 'web')!.v4).toEqual(['10.1.0.1']);
    z.deleteEndpointSlice('ns', 'web-1');
    expect(view(z, 'ns', 'web')!.endpoints).toEqual([]);
    expect(counts.EndpointSlice).toBe(0);
  });

  it('merges slices, dedupes addresses, groups endpoints by name', () => {
    const { z } = zone();
    z.upsertService(svc('ns', 'db', { clusterIPs: [] }));
    z.upsertEndpointSlice(slice('ns', 'db-a', 'db', [ep('10.1.0.1', { hostname: 'db-0' }), ep('10.1.0.2')]));
    z.upsertEndpointSlice(slice('ns', 'db-b', 'db', [ep('10.1.0.2')], { ports: [tcp('metrics', 9090)] }));
    z.upsertEndpointSlice(slice('ns', 'db-6', 'db', [ep('FD00:0::1', { hostname: 'db-0' })], { addressType: 'IPv6' }));
    z.upsertEndpointSlice(slice('ns', 'db-f', 'db', [ep('db.example.com')], { addressType: 'FQDN' }));
    const v = view(z, 'ns', 'db')!;
    expect(v.v4).toEqual(['10.1.0.1', '10.1.0.2']);
    expect(v.v6).toEqual(['fd00::1']);
    expect(v.endpoints.map((e) => [e.name, e.v4, e.v6, e.ports.map((p) => p.port)])).toEqual([
      ['10-1-0-2', ['10.1.0.2'], [], [80, 9090]],
      ['db-0', ['10.1.0.1'], ['fd00::1'], [80]],
    ]);
  });

  it('moves a slice whose service label changed', () => {
    const { z } = zone();
    z.upsertService(svc('ns', 'a', { clusterIPs: ['None'] }));
    z.upsertService(svc('ns', 'b', { clusterIPs: ['None'] }));
    z.upsertEndpointSlice(slice('ns', 's1', 'a', [ep('10.1.0.1')]));
    z.upsertEndpointSlice(slice('ns', 's1', 'b', [ep('10.1.0.1')]));
    expect(view(z, 'ns', 'a')!.v4).toEqual([]);
    expect(view(z, 'ns', 'b')!.v4).toEqual(['10.1.0.1']);
    expect(z.counts().EndpointSlice).toBe(1);
  });

  it('classifies services', () => {
    const { z } = zone();
    z.upsertService(svc('ns', 'c', { clusterIPs: ['10.0.0.1', '10.0.0.1', 'fd00::1'] }));
    z.upsertService(svc('ns', 'h', { clusterIPs: ['None'] }));
    z.upsertService(svc('ns', 'e', { type: 'ExternalName', externalName: 'Example.COM' }));
    z.upsertService(svc('ns', 'lb', { type: 'LoadBalancer', clusterIPs: ['10.0.0.2'] }));
    expect(view(z, 'ns', 'c')).toMatchObject({ kind: 'cluster_ip', clusterV4: ['10.0.0.1'], clusterV6: ['fd00::1'] });
    expect(view(z, 'ns', 'h')!.kind).toBe('headless');
    expect(view(z, 'ns', 'e')).toMatchObject({ kind: 'external', externalName: 'example.com.' });
    expect(view(z, 'ns', 'lb')!.kind).toBe('cluster_ip');
  });

  it('looks names up case-insensitively (keys are lowercase)', () => {
    const { z } = zone();
    z.upsertService(svc('ns', 'Web', { clusterIPs: ['10.0.0.1'] }));
    expect(view(z, 'ns', 'web')!.name).toBe('web');
  });
});

describe('KubeZone: compact form', () => {
  it('looks endpoint labels up the same with and without the index (above 64 addresses)', () => {
    const { z } = zone();
    z.upsertService(svc('ns', 'big', { clusterIPs: ['None'] }));
    const eps = Array.from({ length: 100 }, (_, i) => ep(`10.1.${i >> 8}.${i & 255}`, i % 2 === 0 ? { hostname: `Pet-${i}` } : {}));
    z.upsertEndpointSlice(slice('ns', 'big-1', 'big', eps));
    const v = view(z, 'ns', 'big')!;
    expect(v.endpoint('pet-0')).toEqual({ name: 'pet-0', v4: ['10.1.0.0'], v6: [], ports: [tcp('http', 80)] });
    expect(v.endpoint('10-1-0-1')?.v4).toEqual(['10.1.0.1']);
    expect(v.endpoint('10-1-0-0')).toBeUndefined();
    expect(v.endpoints).toHaveLength(100);
    expect(z.reverseTargets('10.1.0.2', deps()).map((t) => t.endpoint)).toEqual(['pet-2']);
    // A not-ready address is answered once the Service publishes not-ready addresses.
    z.upsertEndpointSlice(slice('ns', 'big-2', 'big', [ep('10.2.0.1', { ready: false })]));
    expect(view(z, 'ns', 'big')!.endpoint('10-2-0-1')).toBeUndefined();
    z.upsertService(svc('ns', 'big', { clusterIPs: ['None'], publishNotReadyAddresses: true }));
    expect(view(z, 'ns', 'big')!.endpoint('10-2-0-1')?.v4).toEqual(['10.2.0.1']);
    expect(z.reverseTargets('10.2.0.1', deps()).map((t) => t.endpoint)).toEqual(['10-2-0-1']);
  });
});

describe('KubeZone: change tracking', () => {
  it('moves only the cells an event touches', () => {
    const { z } = zone();
    z.upsertService(svc('ns', 'a', { clusterIPs: ['10.0.0.1'] }));
    z.upsertService(svc('ns', 'b', { clusterIPs: ['10.0.0.2'] }));
    const a = view(z, 'ns', 'a')!.cell;
    const aGen = a.gen;
    const nsDeps: Cell[] = [];
    z.namespaceExposed('ns', nsDeps);
    const nsGen = nsDeps[0]!.gen;
    const g = z.global.gen;
    z.upsertService(svc('ns', 'b', { clusterIPs: ['10.0.0.3'] }));
    expect(a.gen).toBe(aGen);
    expect(nsDeps[0]!.gen).toBe(nsGen);
    expect(z.global.gen).toBeGreaterThan(g);
    z.upsertEndpointSlice(slice('ns', 'a-1', 'a', [ep('10.1.0.1')]));
    expect(a.gen).toBeGreaterThan(aGen);
  });

  it('ignores updates that change nothing DNS uses (relists, changedAt only)', () => {
    const { z, programmed } = zone();
    const s = svc('ns', 'a', { clusterIPs: ['10.0.0.1'] });
    z.upsertService(s);
    const g = z.global.gen;
    const serial = z.serial;
    z.upsertService({ ...s, changedAt: NOW - 10 });
    z.replaceAll('Service', [{ ...s }]);
    z.upsertNamespace({ name: 'ns', labels: {} });
    expect(z.global.gen).toBe(g);
    expect(z.serial).toBe(serial);
    expect(programmed).toEqual([]);
  });

  it('moves the cell of an address when its PTR or pod changes', () => {
    const { z } = zone();
    z.upsertService(svc('ns', 'a', { clusterIPs: ['10.0.0.1'] }));
    const d: Cell[] = [];
    expect(z.reverseTargets('10.0.0.1', d).map((t) => t.view.name)).toEqual(['a']);
    const gens = d.map((c) => c.gen);
    z.upsertService(svc('ns', 'b', { clusterIPs: ['10.0.0.2'] }));
    expect(d.map((c) => c.gen)).toEqual(gens);
    z.upsertService(svc('ns', 'a', { clusterIPs: ['10.0.0.5'] }));
    expect(d.some((c, i) => c.gen !== gens[i])).toBe(true);
    expect(z.reverseTargets('10.0.0.1', deps())).toEqual([]);

    const pd: Cell[] = [];
    z.upsertPod({ namespace: 'ns', name: 'p', ips: ['10.2.0.1'] });
    expect(z.hasPod('10.2.0.1', 'ns', pd)).toBe(true);
    const pg = pd[0]!.gen;
    z.deletePod('ns', 'p');
    expect(pd[0]!.gen).toBeGreaterThan(pg);
    expect(z.hasPod('10.2.0.1', 'ns', deps())).toBe(false);
  });

  it('raises the serial once per batch of changes, never backwards', () => {
    const { z } = zone();
    const s0 = z.serial;
    for (let i = 0; i < 100; i++) z.upsertService(svc('ns', `s${i}`, { clusterIPs: [`10.0.1.${i}`] }));
    expect(z.serial).toBe(s0 + 1);
    expect(z.serial).toBe(s0 + 1);
  });
});

describe('KubeZone: reverse map', () => {
  it('prefers the cluster IP owner, lists every endpoint name otherwise', () => {
    const { z } = zone();
    z.upsertService(svc('ns', 'a', { clusterIPs: ['10.0.0.1'] }));
    z.upsertService(svc('ns', 'h1', { clusterIPs: ['None'] }));
    z.upsertService(svc('ns', 'h2', { clusterIPs: ['None'] }));
    z.upsertEndpointSlice(slice('ns', 'h1-x', 'h1', [ep('10.1.0.1', { hostname: 'x' }), ep('10.0.0.1')]));
    z.upsertEndpointSlice(slice('ns', 'h2-x', 'h2', [ep('10.1.0.1', { hostname: 'y' })]));
    expect(z.reverseTargets('10.0.0.1', deps()).map((t) => [t.view.name, t.endpoint])).toEqual([['a', undefined]]);
    expect(z.reverseTargets('10.1.0.1', deps()).map((t) => [t.view.name, t.endpoint]).sort()).toEqual([['h1', 'x'], ['h2', 'y']]);
    z.deleteEndpointSlice('ns', 'h2-x');
    expect(z.reverseTargets('10.1.0.1', deps()).map((t) => t.endpoint)).toEqual(['x']);
  });

  it('finds its own addresses through the endpoints of its Service', () => {
    const { z } = zone();
    z.upsertService(svc('ns', 'dns', { clusterIPs: ['10.0.0.10', 'fd00::10'] }));
    z.upsertEndpointSlice(slice('ns', 'dns-1', 'dns', [ep('10.1.0.53')]));
    expect(z.serverAddresses(['10.1.0.53'], deps())).toEqual(['10.0.0.10', 'fd00::10']);
    expect(z.serverAddresses(['10.9.9.9'], deps())).toEqual(['10.9.9.9']);
    z.upsertService(svc('ns', 'dns', { clusterIPs: ['None'] }));
    expect(z.serverAddresses(['10.1.0.53'], deps())).toEqual(['10.1.0.53']);
  });
});

describe('KubeZone: namespaces and filters', () => {
  it('tracks namespace existence', () => {
    const { z } = zone();
    expect(z.namespaceExposed('ns', deps())).toBe(true);
    expect(z.namespaceExposed('nope', deps())).toBe(false);
    z.deleteNamespace('ns');
    expect(z.namespaceExposed('ns', deps())).toBe(false);
  });

  it('counts a namespace as existing while it holds a Service with implicitNamespaces (manifests)', () => {
    const { z } = zone({ implicitNamespaces: true });
    z.upsertService(svc('apps', 'a', { clusterIPs: ['10.0.0.1'] }));
    expect(z.namespaceExposed('apps', deps())).toBe(true);
    z.deleteService('apps', 'a');
    expect(z.namespaceExposed('apps', deps())).toBe(false);
    const { z: strict } = zone();
    strict.upsertService(svc('apps', 'a', { clusterIPs: ['10.0.0.1'] }));
    expect(strict.namespaceExposed('apps', deps())).toBe(false);
  });

  it('keeps only the configured namespaces', () => {
    const { z } = zone({ namespaces: ['kept'] });
    z.upsertNamespace({ name: 'kept', labels: {} });
    z.upsertService(svc('ns', 'a', { clusterIPs: ['10.0.0.1'] }));
    z.upsertService(svc('kept', 'b', { clusterIPs: ['10.0.0.2'] }));
    z.upsertPod({ namespace: 'ns', name: 'p', ips: ['10.2.0.1'] });
    expect(z.counts()).toEqual({ Service: 1, EndpointSlice: 0, Namespace: 1, Pod: 0 });
    expect(z.namespaceExposed('ns', deps())).toBe(false);
    expect(z.reverseTargets('10.0.0.1', deps())).toEqual([]);
  });

  it('drops slices with endpoints off and pods with pods off', () => {
    const { z } = zone({ endpoints: false, pods: false });
    z.upsertEndpointSlice(slice('ns', 's', 'a', [ep('10.1.0.1')]));
    z.upsertPod({ namespace: 'ns', name: 'p', ips: ['10.2.0.1'] });
    expect(z.counts()).toMatchObject({ EndpointSlice: 0, Pod: 0 });
  });
});

describe('KubeZone: replaceAll', () => {
  it('sets the full set of a kind: deletes what is gone, keeps what is equal', () => {
    const { z } = zone();
    z.replaceAll('Service', [svc('ns', 'a', { clusterIPs: ['10.0.0.1'] }), svc('ns', 'b', { clusterIPs: ['10.0.0.2'] })]);
    const a = view(z, 'ns', 'a')!.cell;
    const gen = a.gen;
    z.replaceAll('Service', [svc('ns', 'a', { clusterIPs: ['10.0.0.1'] })]);
    expect(view(z, 'ns', 'b')).toBeUndefined();
    expect(a.gen).toBe(gen);

    z.replaceAll('EndpointSlice', [slice('ns', 'a-1', 'a', [ep('10.1.0.1')]), slice('ns', 'a-2', 'a', [ep('10.1.0.2')])]);
    z.replaceAll('EndpointSlice', [slice('ns', 'a-2', 'a', [ep('10.1.0.2')])]);
    expect(view(z, 'ns', 'a')!.v4).toEqual(['10.1.0.2']);

    z.replaceAll('Pod', [{ namespace: 'ns', name: 'p1', ips: ['10.2.0.1'] }, { namespace: 'ns', name: 'p2', ips: ['fd00::0:1'] }]);
    expect(z.namespaceOfIP('fd00::1')).toBe('ns');
    z.replaceAll('Pod', [{ namespace: 'ns', name: 'p2', ips: ['fd00::1'] }]);
    expect(z.namespaceOfIP('10.2.0.1')).toBeUndefined();
    expect(z.namespaceOfIP('fd00:0:0::1')).toBe('ns');
    // An IP that names more than one namespace, or a hostNetwork pod's (node) IP, names none.
    z.replaceAll('Pod', [
      { namespace: 'ns', name: 'p2', ips: ['fd00::1'] }, { namespace: 'ns', name: 'p3', ips: ['fd00::1'] },
      { namespace: 'a', name: 'x', ips: ['10.3.0.1'] }, { namespace: 'b', name: 'y', ips: ['10.3.0.1'] },
      { namespace: 'kube-system', name: 'proxy', ips: ['10.4.0.1'], hostNetwork: true },
    ]);
    expect(z.namespaceOfIP('fd00::1')).toBe('ns');
    expect(z.namespaceOfIP('10.3.0.1')).toBeUndefined();
    expect(z.namespaceOfIP('10.4.0.1')).toBeUndefined();

    z.replaceAll('Namespace', [{ name: 'other', labels: {} }]);
    expect(z.namespaceExposed('ns', deps())).toBe(false);
    expect(z.namespaceExposed('other', deps())).toBe(true);
  });

  it('page by page (beginReplace): pages apply as added, what no page held goes at end()', () => {
    const { z } = zone();
    z.replaceAll('Service', [svc('ns', 'a', { clusterIPs: ['10.0.0.1'] }), svc('ns', 'b', { clusterIPs: ['10.0.0.2'] })]);
    z.replaceAll('EndpointSlice', [slice('ns', 'b-1', 'b', [ep('10.1.0.1')]), slice('ns', 'b-2', 'b', [ep('10.1.0.2')])]);
    const a = view(z, 'ns', 'a')!.cell;
    const gen = a.gen;

    const services = z.beginReplace('Service');
    services.add([svc('NS', 'A', { clusterIPs: ['10.0.0.1'] })]);
    services.add([svc('ns', 'c', { clusterIPs: ['10.0.0.3'] })]);
    // Added pages answer at once; what is missing so far still answers until the end.
    expect(view(z, 'ns', 'c')!.clusterV4).toEqual(['10.0.0.3']);
    expect(view(z, 'ns', 'b')).toBeDefined();
    services.end();
    expect(view(z, 'ns', 'b')).toBeUndefined();
    expect(view(z, 'ns', 'a')).toBeDefined();
    expect(a.gen).toBe(gen); // unchanged (keys compare case-insensitively)
    expect(() => services.add([])).toThrow(/already ended/);

    const slices = z.beginReplace('EndpointSlice');
    slices.add([slice('ns', 'b-2', 'b', [ep('10.1.0.2')])]);
    slices.end();
    expect(z.counts().EndpointSlice).toBe(1);

    // An abandoned replacement (a list that failed halfway) deletes nothing.
    const abandoned = z.beginReplace('Service');
    abandoned.add([svc('ns', 'd', { clusterIPs: ['10.0.0.4'] })]);
    expect(z.counts().Service).toBe(3);
  });
});

describe('KubeZone: programming duration', () => {
  it('observes the time from the change to its application, by service kind', () => {
    const { z, programmed } = zone();
    z.upsertService(svc('ns', 'c', { clusterIPs: ['10.0.0.1'], changedAt: NOW - 1500 }));
    z.upsertService(svc('ns', 'h', { clusterIPs: ['None'], changedAt: NOW - 2000 }));
    z.upsertEndpointSlice({ ...slice('ns', 'h-1', 'h', [ep('10.1.0.1')]), changedAt: NOW - 250 });
    z.upsertService(svc('ns', 'h', { clusterIPs: ['None'], ports: [tcp('x', 1)], changedAt: NOW - 100 }));
    z.upsertEndpointSlice({ ...slice('ns', 'c-1', 'c', [ep('10.1.0.2')]), changedAt: NOW - 50 });
    z.upsertService(svc('ns', 'e', { type: 'ExternalName', externalName: 'x.org', changedAt: NOW - 1 }));
    z.upsertEndpointSlice({ ...slice('ns', 'orphan-1', 'orphan', [ep('10.1.0.3')]), changedAt: NOW - 1 });
    expect(programmed).toEqual([
      ['cluster_ip', 1.5], ['headless_without_selector', 2], ['headless_with_selector', 0.25],
      ['headless_with_selector', 0.1], ['cluster_ip', 0.05],
    ]);
  });
});

describe('helpers', () => {
  it('dashes addresses like CoreDNS', () => {
    expect(dashedIP('10.244.1.5')).toBe('10-244-1-5');
    expect(dashedIP('fd00::5')).toBe('fd00--5');
    expect(dashedIP('fd00::')).toBe('fd00--0');
    expect(dashedIP('::1')).toBe('--1');
  });
  it('names endpoints: hostname, pod name (with endpoint_pod_names), dashed address', () => {
    expect(endpointLabel(ep('10.0.0.1', { hostname: 'Pet-0', podName: 'p' }), '10.0.0.1', true)).toBe('pet-0');
    expect(endpointLabel(ep('10.0.0.1', { podName: 'web-7d9' }), '10.0.0.1', true)).toBe('web-7d9');
    expect(endpointLabel(ep('10.0.0.1', { podName: 'web-7d9' }), '10.0.0.1', false)).toBe('10-0-0-1');
    expect(endpointLabel(ep('10.0.0.1', { podName: 'a.b' }), '10.0.0.1', true)).toBe('10-0-0-1');
  });
  it('answers ready, or published not-ready, endpoints that are not terminating', () => {
    expect(answered(ep('x'), false)).toBe(true);
    expect(answered(ep('x', { ready: false }), false)).toBe(false);
    expect(answered(ep('x', { ready: false }), true)).toBe(true);
    expect(answered(ep('x', { terminating: true }), true)).toBe(false);
  });
  it('compares slim objects ignoring changedAt', () => {
    expect(sameIgnoringChangeTime(svc('a', 'b', { changedAt: 1 }), svc('a', 'b', { changedAt: 2 }))).toBe(true);
    expect(sameIgnoringChangeTime(svc('a', 'b', { ports: [tcp('x', 1)] }), svc('a', 'b'))).toBe(false);
  });
});
