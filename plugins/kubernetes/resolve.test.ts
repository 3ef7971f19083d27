// Zone resolution tables: (objects, query) → rcode and sections, written as zone-file lines.
// No sockets: the resolver and the handler run against an in-memory zone.
import { describe, expect, it } from 'vitest';
import { type Case, makeRequest, serve, sortAndCheck } from '../../test/helpers.ts';
import { type Msg, type SrvRR, Rcode, Type } from '../../src/dns/types.ts';
import type { Next } from '../../src/plugin.ts';
import type { Request } from '../../src/request.ts';
import { defaultConfig, type KubernetesConfig } from './config.ts';
import { KubernetesHandler } from './kubernetes.ts';
import type { SlimEndpoint, SlimEndpointSlice, SlimPort, SlimService } from './objects.ts';
import { podIP, resolve, type ResolveConfig } from './resolve.ts';
import { KubeZone, type ZoneOptions } from './zone.ts';

const NOW = 1_700_000_000_000;

const tcp = (name: string, port: number): SlimPort => ({ name, port, protocol: 'TCP' });
const udp = (name: string, port: number): SlimPort => ({ name, port, protocol: 'UDP' });

function svc(namespace: string, name: string, o: Partial<SlimService> = {}): SlimService {
  return { namespace, name, type: 'ClusterIP', clusterIPs: [], externalName: '', ports: [], publishNotReadyAddresses: false, ...o };
}
function ep(address: string, o: Partial<SlimEndpoint> = {}): SlimEndpoint {
  return { addresses: [address], ready: true, serving: true, terminating: false, ...o };
}
function slice(namespace: string, name: string, service: string, endpoints: SlimEndpoint[], ports: SlimPort[],
  addressType: SlimEndpointSlice['addressType'] = 'IPv4'): SlimEndpointSlice {
  return { namespace, name, service, addressType, ports, endpoints };
}

/** The test cluster. */
function cluster(opts: ZoneOptions = {}): KubeZone {
  const z = new KubeZone({ now: () => NOW, pods: true, ...opts });
  for (const ns of ['testns', 'kube-system', 'other']) z.upsertNamespace({ name: ns, labels: {} });
  z.upsertService(svc('testns', 'svc1', { clusterIPs: ['10.0.0.1'], ports: [tcp('http', 80), udp('dns', 53), tcp('', 8080)] }));
  z.upsertEndpointSlice(slice('testns', 'svc1-x', 'svc1', [ep('172.0.0.10')], [tcp('http', 8080)]));
  z.upsertService(svc('testns', 'svcdual', { clusterIPs: ['10.0.0.2', 'fd00::2'], ports: [tcp('http', 80)] }));
  z.upsertService(svc('testns', 'svc6', { clusterIPs: ['fd00::6'], ports: [tcp('https', 443)] }));
  z.upsertService(svc('testns', 'hdls1', { clusterIPs: ['None'], ports: [tcp('http', 80)] }));
  const hdlsPorts = [tcp('http', 8080), { name: 'sctp-p', port: 9999, protocol: 'SCTP' as const }];
  z.upsertEndpointSlice(slice('testns', 'hdls1-v4', 'hdls1', [
    ep('172.0.0.2', { hostname: 'pet-0', podName: 'hdls1-0' }),
    ep('172.0.0.3', { podName: 'hdls1-1' }),
    ep('172.0.0.4', { ready: false, podName: 'hdls1-2' }),
    ep('172.0.0.5', { terminating: true, podName: 'hdls1-3' }),
  ], hdlsPorts));
  z.upsertEndpointSlice(slice('testns', 'hdls1-v6', 'hdls1', [
    ep('fd00::2:3', { podName: 'hdls1-1' }),
    ep('fd00::aa', { hostname: 'pet-0', podName: 'hdls1-0' }),
  ], hdlsPorts, 'IPv6'));
  z.upsertService(svc('testns', 'hdlsnr', { clusterIPs: [], publishNotReadyAddresses: true }));
  z.upsertEndpointSlice(slice('testns', 'hdlsnr-x', 'hdlsnr', [
    ep('172.0.1.1', { ready: false }), ep('172.0.1.2', { ready: false, terminating: true }),
  ], []));
  z.upsertService(svc('testns', 'hdlsempty', { clusterIPs: ['None'] }));
  z.upsertService(svc('testns', 'ext', { type: 'ExternalName', externalName: 'example.com' }));
  z.upsertService(svc('testns', 'extin', { type: 'ExternalName', externalName: 'svc1.testns.svc.cluster.local' }));
  z.upsertService(svc('testns', 'extloop', { type: 'ExternalName', externalName: 'extloop.testns.svc.cluster.local.' }));
  z.upsertService(svc('testns', 'extmissing', { type: 'ExternalName', externalName: 'nope.testns.svc.cluster.local' }));
  z.upsertService(svc('testns', 'extip', { type: 'ExternalName', externalName: '1.2.3.4' }));
  z.upsertService(svc('testns', 'empty', { clusterIPs: ['10.0.0.9'], ports: [tcp('http', 80)] }));
  z.upsertService(svc('kube-system', 'kube-dns', { clusterIPs: ['10.0.0.10'], ports: [udp('dns', 53), tcp('dns-tcp', 53)] }));
  z.upsertEndpointSlice(slice('kube-system', 'kube-dns-x', 'kube-dns', [ep('172.0.0.53')], [udp('dns', 53), tcp('dns-tcp', 53)]));
  z.upsertService(svc('ghost', 'svc', { clusterIPs: ['10.0.0.99'] }));
  z.upsertPod({ namespace: 'testns', name: 'pod-a', ips: ['172.0.0.2'] });
  return z;
}

const ZONES = ['cluster.local.', 'in-addr.arpa.', 'ip6.arpa.'];

function rcfg(over: Partial<ResolveConfig> = {}): ResolveConfig {
  return {
    zones: ZONES, primaryZone: 'cluster.local.', ttl: 5, pods: 'disabled', noEndpoints: false,
    ignoreEmptyService: false, localIPs: ['172.0.0.53'], ...over,
  };
}

interface Row extends Case { q: string; t: number }

function soaLine(zone: KubeZone, z = 'cluster.local.', ttl = 5, min = ttl): string {
  return `${z} ${ttl} IN SOA ns.dns.cluster.local. hostmaster.${z} ${zone.serial} 7200 1800 86400 ${min}`;
}

function run(zone: KubeZone, cfg: ResolveConfig, rows: Row[]): void {
  for (const r of rows) {
    const m = resolve(zone, cfg, r.q, r.t);
    try {
      sortAndCheck(m, r);
      expect(m.flags.aa).toBe(true);
    } catch (e) {
      (e as Error).message = `${r.q} ${r.t}: ${(e as Error).message}`;
      throw e;
    }
  }
}

describe('resolve: ClusterIP services', () => {
  const z = cluster();
  const soa = soaLine(z);
  it('answers A, AAAA (dual-stack), NODATA for the missing family and other types', () => {
    run(z, rcfg(), [
      { q: 'svc1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NOERROR, answer: ['svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1'], ns: [], extra: [] },
      { q: 'svc1.testns.svc.cluster.local.', t: Type.AAAA, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'svcdual.testns.svc.cluster.local.', t: Type.A, answer: ['svcdual.testns.svc.cluster.local. 5 IN A 10.0.0.2'] },
      { q: 'svcdual.testns.svc.cluster.local.', t: Type.AAAA, answer: ['svcdual.testns.svc.cluster.local. 5 IN AAAA fd00::2'] },
      { q: 'svc6.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'svc6.testns.svc.cluster.local.', t: Type.AAAA, answer: ['svc6.testns.svc.cluster.local. 5 IN AAAA fd00::6'] },
      { q: 'svc1.testns.svc.cluster.local.', t: Type.MX, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'svc1.testns.svc.cluster.local.', t: Type.TXT, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'svc1.testns.svc.cluster.local.', t: Type.CNAME, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'svc1.testns.svc.cluster.local.', t: Type.ANY, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'nosvc.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, answer: [], ns: [soa] },
    ]);
  });
  it('answers SRV for named ports with the service as target and its addresses as additional', () => {
    run(z, rcfg(), [
      {
        q: '_http._tcp.svc1.testns.svc.cluster.local.', t: Type.SRV, rcode: Rcode.NOERROR,
        answer: ['_http._tcp.svc1.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc1.testns.svc.cluster.local.'],
        extra: ['svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1'], ns: [],
      },
      {
        q: '_dns._udp.svc1.testns.svc.cluster.local.', t: Type.SRV,
        answer: ['_dns._udp.svc1.testns.svc.cluster.local. 5 IN SRV 0 100 53 svc1.testns.svc.cluster.local.'],
        extra: ['svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1'],
      },
      {
        q: '_http._tcp.svcdual.testns.svc.cluster.local.', t: Type.SRV,
        answer: ['_http._tcp.svcdual.testns.svc.cluster.local. 5 IN SRV 0 100 80 svcdual.testns.svc.cluster.local.'],
        extra: ['svcdual.testns.svc.cluster.local. 5 IN A 10.0.0.2', 'svcdual.testns.svc.cluster.local. 5 IN AAAA fd00::2'],
      },
      { q: '_dns._tcp.svc1.testns.svc.cluster.local.', t: Type.SRV, rcode: Rcode.NXDOMAIN, answer: [], ns: [soa] },
      { q: '_nope._tcp.svc1.testns.svc.cluster.local.', t: Type.SRV, rcode: Rcode.NXDOMAIN, ns: [soa] },
      // Unnamed ports have no SRV name.
      { q: '_._tcp.svc1.testns.svc.cluster.local.', t: Type.SRV, rcode: Rcode.NXDOMAIN },
      // Without underscores it is no SRV name.
      { q: 'http.tcp.svc1.testns.svc.cluster.local.', t: Type.SRV, rcode: Rcode.NXDOMAIN },
      // The SRV name exists for other types too.
      { q: '_http._tcp.svc1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
    ]);
  });
  it('answers SRV at the service name with every port', () => {
    run(z, rcfg(), [{
      q: 'svc1.testns.svc.cluster.local.', t: Type.SRV, rcode: Rcode.NOERROR,
      answer: [
        'svc1.testns.svc.cluster.local. 5 IN SRV 0 33 80 svc1.testns.svc.cluster.local.',
        'svc1.testns.svc.cluster.local. 5 IN SRV 0 33 53 svc1.testns.svc.cluster.local.',
        'svc1.testns.svc.cluster.local. 5 IN SRV 0 33 8080 svc1.testns.svc.cluster.local.',
      ],
      extra: ['svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1'],
    }]);
  });
  it('gives empty non-terminals NODATA and names that do not exist NXDOMAIN', () => {
    run(z, rcfg(), [
      { q: '_tcp.svc1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: '_udp.svc1.testns.svc.cluster.local.', t: Type.SRV, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: '_sctp.svc1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soa] },
      { q: 'testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'other.svc.cluster.local.', t: Type.A, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'nons.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soa] },
      // A Service whose Namespace does not exist is not exposed.
      { q: 'svc.ghost.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soa] },
      { q: 'svc.cluster.local.', t: Type.A, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'pod.cluster.local.', t: Type.A, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'dns.cluster.local.', t: Type.A, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'foo.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soa] },
      { q: 'a.b.c.d.e.f.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soa] },
      { q: 'x._http._tcp.svc1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      // Endpoint names under a ClusterIP service exist, as in CoreDNS (so endpoint PTRs resolve forward).
      { q: '172-0-0-10.svc1.testns.svc.cluster.local.', t: Type.A, answer: ['172-0-0-10.svc1.testns.svc.cluster.local. 5 IN A 172.0.0.10'] },
      { q: '172-0-0-11.svc1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
    ]);
  });
  it('does not expand wildcards (CoreDNS removed them; the spec never had them)', () => {
    run(z, rcfg(), [
      { q: '*.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: 'any.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: 'svc1.*.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: '*.svc1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: '_http.*.svc1.testns.svc.cluster.local.', t: Type.SRV, rcode: Rcode.NXDOMAIN },
    ]);
  });
});

describe('resolve: headless services', () => {
  const z = cluster();
  const soa = soaLine(z);
  it('answers every ready endpoint address, never not-ready or terminating ones', () => {
    run(z, rcfg(), [
      { q: 'hdls1.testns.svc.cluster.local.', t: Type.A, answer: ['hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2', 'hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.3'], ns: [] },
      { q: 'hdls1.testns.svc.cluster.local.', t: Type.AAAA, answer: ['hdls1.testns.svc.cluster.local. 5 IN AAAA fd00::aa', 'hdls1.testns.svc.cluster.local. 5 IN AAAA fd00::2:3'] },
      { q: 'hdls1.testns.svc.cluster.local.', t: Type.TXT, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      // publishNotReadyAddresses: not-ready endpoints are answered, terminating ones still are not.
      { q: 'hdlsnr.testns.svc.cluster.local.', t: Type.A, answer: ['hdlsnr.testns.svc.cluster.local. 5 IN A 172.0.1.1'] },
      // No ready endpoints: NXDOMAIN (spec 2.4.1), whatever the type.
      { q: 'hdlsempty.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soa] },
      { q: 'hdlsempty.testns.svc.cluster.local.', t: Type.SRV, rcode: Rcode.NXDOMAIN, ns: [soa] },
    ]);
  });
  it('names endpoints by hostname, else by dashed address (IPv6 too)', () => {
    run(z, rcfg(), [
      { q: 'pet-0.hdls1.testns.svc.cluster.local.', t: Type.A, answer: ['pet-0.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2'] },
      { q: 'pet-0.hdls1.testns.svc.cluster.local.', t: Type.AAAA, answer: ['pet-0.hdls1.testns.svc.cluster.local. 5 IN AAAA fd00::aa'] },
      { q: '172-0-0-3.hdls1.testns.svc.cluster.local.', t: Type.A, answer: ['172-0-0-3.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.3'] },
      { q: '172-0-0-3.hdls1.testns.svc.cluster.local.', t: Type.AAAA, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'fd00--2-3.hdls1.testns.svc.cluster.local.', t: Type.AAAA, answer: ['fd00--2-3.hdls1.testns.svc.cluster.local. 5 IN AAAA fd00::2:3'] },
      // The pod name is not a name without endpoint_pod_names.
      { q: 'hdls1-1.hdls1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: '172-0-0-4.hdls1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soa] },
      { q: '172-0-0-5.hdls1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soa] },
    ]);
  });
  it('answers SRV per endpoint and port with endpoint targets and their addresses', () => {
    const extra = [
      'pet-0.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2',
      'pet-0.hdls1.testns.svc.cluster.local. 5 IN AAAA fd00::aa',
      '172-0-0-3.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.3',
      'fd00--2-3.hdls1.testns.svc.cluster.local. 5 IN AAAA fd00::2:3',
    ];
    run(z, rcfg(), [
      {
        q: '_http._tcp.hdls1.testns.svc.cluster.local.', t: Type.SRV, rcode: Rcode.NOERROR,
        answer: [
          '_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 33 8080 pet-0.hdls1.testns.svc.cluster.local.',
          '_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 33 8080 172-0-0-3.hdls1.testns.svc.cluster.local.',
          '_http._tcp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 33 8080 fd00--2-3.hdls1.testns.svc.cluster.local.',
        ],
        extra, ns: [],
      },
      {
        q: '_sctp-p._sctp.hdls1.testns.svc.cluster.local.', t: Type.SRV,
        answer: [
          '_sctp-p._sctp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 33 9999 pet-0.hdls1.testns.svc.cluster.local.',
          '_sctp-p._sctp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 33 9999 172-0-0-3.hdls1.testns.svc.cluster.local.',
          '_sctp-p._sctp.hdls1.testns.svc.cluster.local. 5 IN SRV 0 33 9999 fd00--2-3.hdls1.testns.svc.cluster.local.',
        ],
        extra,
      },
      { q: '_sctp.hdls1.testns.svc.cluster.local.', t: Type.SRV, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: '_http._udp.hdls1.testns.svc.cluster.local.', t: Type.SRV, rcode: Rcode.NXDOMAIN, ns: [soa] },
      {
        q: 'pet-0.hdls1.testns.svc.cluster.local.', t: Type.SRV,
        answer: [
          'pet-0.hdls1.testns.svc.cluster.local. 5 IN SRV 0 50 8080 pet-0.hdls1.testns.svc.cluster.local.',
          'pet-0.hdls1.testns.svc.cluster.local. 5 IN SRV 0 50 9999 pet-0.hdls1.testns.svc.cluster.local.',
        ],
        extra: ['pet-0.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2', 'pet-0.hdls1.testns.svc.cluster.local. 5 IN AAAA fd00::aa'],
      },
    ]);
    const all = resolve(z, rcfg(), 'hdls1.testns.svc.cluster.local.', Type.SRV);
    expect(all.answer).toHaveLength(6);
    expect(all.answer.every((r) => r.type === Type.SRV && (r as SrvRR).data.weight === 16)).toBe(true);
    sortAndCheck(all, { extra });
  });
  it('names endpoints after their pods with endpoint_pod_names (hostname still wins)', () => {
    const zp = cluster({ endpointPodNames: true });
    run(zp, rcfg(), [
      { q: 'hdls1-1.hdls1.testns.svc.cluster.local.', t: Type.A, answer: ['hdls1-1.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.3'] },
      { q: 'hdls1-1.hdls1.testns.svc.cluster.local.', t: Type.AAAA, answer: ['hdls1-1.hdls1.testns.svc.cluster.local. 5 IN AAAA fd00::2:3'] },
      { q: 'pet-0.hdls1.testns.svc.cluster.local.', t: Type.A, answer: ['pet-0.hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2'] },
      { q: '172-0-0-3.hdls1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      // No pod behind the endpoint: the dashed address.
      { q: '172-0-0-10.svc1.testns.svc.cluster.local.', t: Type.A, answer: ['172-0-0-10.svc1.testns.svc.cluster.local. 5 IN A 172.0.0.10'] },
      { q: '3.0.0.172.in-addr.arpa.', t: Type.PTR, answer: ['3.0.0.172.in-addr.arpa. 5 IN PTR hdls1-1.hdls1.testns.svc.cluster.local.'] },
    ]);
  });
});

describe('resolve: ExternalName services', () => {
  const z = cluster();
  const soa = soaLine(z);
  it('answers a CNAME for every type, leaving out-of-zone targets to the client', () => {
    run(z, rcfg(), [
      { q: 'ext.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NOERROR, answer: ['ext.testns.svc.cluster.local. 5 IN CNAME example.com.'], ns: [], extra: [] },
      { q: 'ext.testns.svc.cluster.local.', t: Type.AAAA, answer: ['ext.testns.svc.cluster.local. 5 IN CNAME example.com.'], ns: [] },
      { q: 'ext.testns.svc.cluster.local.', t: Type.CNAME, answer: ['ext.testns.svc.cluster.local. 5 IN CNAME example.com.'], ns: [] },
      { q: 'ext.testns.svc.cluster.local.', t: Type.SRV, answer: ['ext.testns.svc.cluster.local. 5 IN CNAME example.com.'], ns: [] },
      { q: '_http._tcp.ext.testns.svc.cluster.local.', t: Type.SRV, rcode: Rcode.NXDOMAIN, ns: [soa] },
      { q: 'x.ext.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soa] },
      // An address is not a name to point at.
      { q: 'extip.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soa] },
    ]);
  });
  it('chases in-zone targets in the same reply', () => {
    run(z, rcfg(), [
      {
        q: 'extin.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NOERROR, ns: [],
        answer: ['extin.testns.svc.cluster.local. 5 IN CNAME svc1.testns.svc.cluster.local.', 'svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1'],
      },
      {
        q: 'extin.testns.svc.cluster.local.', t: Type.AAAA, rcode: Rcode.NOERROR, ns: [soa],
        answer: ['extin.testns.svc.cluster.local. 5 IN CNAME svc1.testns.svc.cluster.local.'],
      },
      {
        q: 'extin.testns.svc.cluster.local.', t: Type.SRV, ns: [],
        answer: ['extin.testns.svc.cluster.local. 5 IN CNAME svc1.testns.svc.cluster.local.',
          'svc1.testns.svc.cluster.local. 5 IN SRV 0 33 80 svc1.testns.svc.cluster.local.',
          'svc1.testns.svc.cluster.local. 5 IN SRV 0 33 53 svc1.testns.svc.cluster.local.',
          'svc1.testns.svc.cluster.local. 5 IN SRV 0 33 8080 svc1.testns.svc.cluster.local.'],
        extra: ['svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1'],
      },
      // RFC 6604: the rcode is that of the last name in the chain.
      {
        q: 'extmissing.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soa],
        answer: ['extmissing.testns.svc.cluster.local. 5 IN CNAME nope.testns.svc.cluster.local.'],
      },
      // A loop stops after the first CNAME.
      {
        q: 'extloop.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NOERROR, ns: [soa],
        answer: ['extloop.testns.svc.cluster.local. 5 IN CNAME extloop.testns.svc.cluster.local.'],
      },
    ]);
  });
});

describe('resolve: apex, dns-version, NS', () => {
  const z = cluster();
  const soa = soaLine(z);
  it('answers SOA and NS at the apex, NODATA otherwise', () => {
    run(z, rcfg(), [
      { q: 'cluster.local.', t: Type.SOA, rcode: Rcode.NOERROR, answer: [soa], ns: [] },
      {
        q: 'cluster.local.', t: Type.NS, answer: ['cluster.local. 5 IN NS ns.dns.cluster.local.'],
        extra: ['ns.dns.cluster.local. 5 IN A 10.0.0.10'], ns: [],
      },
      { q: 'cluster.local.', t: Type.A, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'ns.dns.cluster.local.', t: Type.A, answer: ['ns.dns.cluster.local. 5 IN A 10.0.0.10'] },
      { q: 'ns.dns.cluster.local.', t: Type.AAAA, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'dns-version.cluster.local.', t: Type.TXT, answer: ['dns-version.cluster.local. 28800 IN TXT "1.1.0"'], ns: [] },
      { q: 'dns-version.cluster.local.', t: Type.A, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'in-addr.arpa.', t: Type.SOA, answer: [soaLine(z, 'in-addr.arpa.')] },
    ]);
  });
  it('falls back to the local addresses when its own Service is not found', () => {
    run(z, rcfg({ localIPs: ['192.0.2.1', 'fd00::53'] }), [
      {
        q: 'cluster.local.', t: Type.NS, answer: ['cluster.local. 5 IN NS ns.dns.cluster.local.'],
        extra: ['ns.dns.cluster.local. 5 IN A 192.0.2.1', 'ns.dns.cluster.local. 5 IN AAAA fd00::53'],
      },
      { q: 'ns.dns.cluster.local.', t: Type.AAAA, answer: ['ns.dns.cluster.local. 5 IN AAAA fd00::53'] },
    ]);
  });
  it('changes the serial when the zone changes, and only then', () => {
    const zz = cluster();
    const before = zz.serial;
    expect(zz.serial).toBe(before);
    zz.upsertService(svc('testns', 'svc1', { clusterIPs: ['10.0.0.1'], ports: [tcp('http', 80), udp('dns', 53), tcp('', 8080)] }));
    expect(zz.serial).toBe(before);
    zz.upsertService(svc('testns', 'new', { clusterIPs: ['10.0.0.77'] }));
    expect(zz.serial).toBeGreaterThan(before);
  });
});

describe('resolve: reverse', () => {
  const z = cluster();
  it('answers PTR for cluster IPs (service name) and endpoint addresses (endpoint name)', () => {
    run(z, rcfg(), [
      { q: '1.0.0.10.in-addr.arpa.', t: Type.PTR, answer: ['1.0.0.10.in-addr.arpa. 5 IN PTR svc1.testns.svc.cluster.local.'], ns: [] },
      { q: '2.0.0.172.in-addr.arpa.', t: Type.PTR, answer: ['2.0.0.172.in-addr.arpa. 5 IN PTR pet-0.hdls1.testns.svc.cluster.local.'] },
      { q: '3.0.0.172.in-addr.arpa.', t: Type.PTR, answer: ['3.0.0.172.in-addr.arpa. 5 IN PTR 172-0-0-3.hdls1.testns.svc.cluster.local.'] },
      { q: '10.0.0.172.in-addr.arpa.', t: Type.PTR, answer: ['10.0.0.172.in-addr.arpa. 5 IN PTR 172-0-0-10.svc1.testns.svc.cluster.local.'] },
      {
        q: '2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.', t: Type.PTR,
        answer: ['2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR svcdual.testns.svc.cluster.local.'],
      },
      {
        q: 'a.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.', t: Type.PTR,
        answer: ['a.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa. 5 IN PTR pet-0.hdls1.testns.svc.cluster.local.'],
      },
      { q: '1.0.0.10.in-addr.arpa.', t: Type.A, rcode: Rcode.NOERROR, answer: [], ns: [soaLine(z, 'in-addr.arpa.')] },
      { q: '4.0.0.172.in-addr.arpa.', t: Type.PTR, rcode: Rcode.NXDOMAIN, ns: [soaLine(z, 'in-addr.arpa.')] },
      { q: '98.0.0.10.in-addr.arpa.', t: Type.PTR, rcode: Rcode.NXDOMAIN },
      { q: '0.0.10.in-addr.arpa.', t: Type.PTR, rcode: Rcode.NXDOMAIN },
      // A Service in a namespace that does not exist has no PTR either.
      { q: '99.0.0.10.in-addr.arpa.', t: Type.PTR, rcode: Rcode.NXDOMAIN },
    ]);
  });
  it('names PTR targets in the primary zone', () => {
    const zones = ['10.in-addr.arpa.', 'example.org.', 'cluster.local.'];
    run(z, rcfg({ zones, primaryZone: 'example.org.' }), [
      { q: '1.0.0.10.in-addr.arpa.', t: Type.PTR, answer: ['1.0.0.10.in-addr.arpa. 5 IN PTR svc1.testns.svc.example.org.'] },
    ]);
  });
});

describe('resolve: pods', () => {
  const z = cluster();
  const soa = soaLine(z);
  it('disabled (default): NXDOMAIN', () => {
    run(z, rcfg(), [
      { q: '172-0-0-2.testns.pod.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soa] },
      { q: 'testns.pod.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
    ]);
  });
  it('insecure: echoes any address in an existing namespace', () => {
    run(z, rcfg({ pods: 'insecure' }), [
      { q: '1-2-3-4.testns.pod.cluster.local.', t: Type.A, answer: ['1-2-3-4.testns.pod.cluster.local. 5 IN A 1.2.3.4'], ns: [] },
      { q: '1-2-3-4.testns.pod.cluster.local.', t: Type.AAAA, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'fd00--1.testns.pod.cluster.local.', t: Type.AAAA, answer: ['fd00--1.testns.pod.cluster.local. 5 IN AAAA fd00::1'] },
      { q: '1-2-3-4.nons.pod.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soa] },
      { q: '01-2-3-4.testns.pod.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: '1-2-3-256.testns.pod.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: 'not-an-ip.testns.pod.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: 'x.1-2-3-4.testns.pod.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: 'testns.pod.cluster.local.', t: Type.A, rcode: Rcode.NOERROR, answer: [], ns: [soa] },
      { q: 'nons.pod.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
    ]);
  });
  it('verified: only a pod with that address in that namespace', () => {
    run(z, rcfg({ pods: 'verified' }), [
      { q: '172-0-0-2.testns.pod.cluster.local.', t: Type.A, answer: ['172-0-0-2.testns.pod.cluster.local. 5 IN A 172.0.0.2'] },
      { q: '172-0-0-2.other.pod.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soa] },
      { q: '1-2-3-4.testns.pod.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: 'testns.pod.cluster.local.', t: Type.A, rcode: Rcode.NOERROR, answer: [] },
    ]);
  });
  it('parses pod labels', () => {
    expect(podIP('10-244-1-5')).toBe('10.244.1.5');
    expect(podIP('fd00--5')).toBe('fd00::5');
    expect(podIP('fd00-0-0-0-0-0-0-5')).toBe('fd00::5');
    expect(podIP('0-0-0-0')).toBe('0.0.0.0');
    expect(podIP('1-2-3')).toBeUndefined();
    expect(podIP('1-2-3-4-5')).toBeUndefined();
    expect(podIP('fd00--5--1')).toBeUndefined();
  });
});

describe('resolve: options', () => {
  it('ttl sets every TTL, the SOA minimum, and the SOA TTL up to 300', () => {
    const z = cluster();
    run(z, rcfg({ ttl: 30 }), [
      { q: 'svc1.testns.svc.cluster.local.', t: Type.A, answer: ['svc1.testns.svc.cluster.local. 30 IN A 10.0.0.1'] },
      { q: 'nosvc.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soaLine(z, 'cluster.local.', 30)] },
    ]);
    run(z, rcfg({ ttl: 3600 }), [
      { q: 'cluster.local.', t: Type.SOA, answer: [soaLine(z, 'cluster.local.', 300, 3600)] },
      { q: '_http._tcp.svc1.testns.svc.cluster.local.', t: Type.SRV, answer: ['_http._tcp.svc1.testns.svc.cluster.local. 3600 IN SRV 0 100 80 svc1.testns.svc.cluster.local.'], extra: ['svc1.testns.svc.cluster.local. 3600 IN A 10.0.0.1'] },
    ]);
    run(z, rcfg({ ttl: 0 }), [
      { q: 'svc1.testns.svc.cluster.local.', t: Type.A, answer: ['svc1.testns.svc.cluster.local. 0 IN A 10.0.0.1'] },
    ]);
  });
  it('namespaces exposes only the listed namespaces', () => {
    const z = cluster({ namespaces: ['kube-system'] });
    run(z, rcfg(), [
      { q: 'svc1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: 'testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: 'kube-dns.kube-system.svc.cluster.local.', t: Type.A, answer: ['kube-dns.kube-system.svc.cluster.local. 5 IN A 10.0.0.10'] },
      { q: '1.0.0.10.in-addr.arpa.', t: Type.PTR, rcode: Rcode.NXDOMAIN },
      { q: '10.0.0.10.in-addr.arpa.', t: Type.PTR, answer: ['10.0.0.10.in-addr.arpa. 5 IN PTR kube-dns.kube-system.svc.cluster.local.'] },
    ]);
    run(z, rcfg({ pods: 'insecure' }), [
      { q: '1-2-3-4.testns.pod.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: '1-2-3-4.kube-system.pod.cluster.local.', t: Type.A, answer: ['1-2-3-4.kube-system.pod.cluster.local. 5 IN A 1.2.3.4'] },
    ]);
  });
  it('noendpoints: no endpoint records, headless services NXDOMAIN', () => {
    const z = cluster({ endpoints: false });
    run(z, rcfg({ noEndpoints: true }), [
      { q: 'svc1.testns.svc.cluster.local.', t: Type.A, answer: ['svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1'] },
      { q: 'hdls1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: 'pet-0.hdls1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: '_http._tcp.hdls1.testns.svc.cluster.local.', t: Type.SRV, rcode: Rcode.NXDOMAIN },
      { q: '172-0-0-10.svc1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: '10.0.0.172.in-addr.arpa.', t: Type.PTR, rcode: Rcode.NXDOMAIN },
    ]);
    // Even with slices in the zone, the resolver does not answer endpoint names.
    run(cluster(), rcfg({ noEndpoints: true }), [
      { q: 'pet-0.hdls1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
      { q: 'hdls1.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN },
    ]);
  });
  it('ignore empty_service: NXDOMAIN for ClusterIP services without ready endpoints', () => {
    const z = cluster();
    run(z, rcfg({ ignoreEmptyService: true }), [
      { q: 'empty.testns.svc.cluster.local.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [soaLine(z)] },
      { q: '_http._tcp.empty.testns.svc.cluster.local.', t: Type.SRV, rcode: Rcode.NXDOMAIN },
      { q: 'svc1.testns.svc.cluster.local.', t: Type.A, answer: ['svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1'] },
      { q: 'ext.testns.svc.cluster.local.', t: Type.A, answer: ['ext.testns.svc.cluster.local. 5 IN CNAME example.com.'] },
    ]);
    run(z, rcfg(), [
      { q: 'empty.testns.svc.cluster.local.', t: Type.A, answer: ['empty.testns.svc.cluster.local. 5 IN A 10.0.0.9'] },
    ]);
  });
  it('answers in every configured zone', () => {
    const z = cluster();
    run(z, rcfg({ zones: ['cluster.local.', 'example.org.'] }), [
      { q: 'svc1.testns.svc.example.org.', t: Type.A, answer: ['svc1.testns.svc.example.org. 5 IN A 10.0.0.1'] },
      {
        q: '_http._tcp.svc1.testns.svc.example.org.', t: Type.SRV,
        answer: ['_http._tcp.svc1.testns.svc.example.org. 5 IN SRV 0 100 80 svc1.testns.svc.example.org.'],
        extra: ['svc1.testns.svc.example.org. 5 IN A 10.0.0.1'],
      },
      { q: 'nope.example.org.', t: Type.A, rcode: Rcode.NXDOMAIN, ns: [`example.org. 5 IN SOA ns.dns.example.org. hostmaster.example.org. ${z.serial} 7200 1800 86400 5`] },
    ]);
  });
  it('serves the root zone too', () => {
    const z = cluster();
    run(z, rcfg({ zones: ['.'], primaryZone: '.' }), [
      { q: 'svc1.testns.svc.', t: Type.A, answer: ['svc1.testns.svc. 5 IN A 10.0.0.1'] },
      { q: '1.0.0.10.in-addr.arpa.', t: Type.PTR, answer: ['1.0.0.10.in-addr.arpa. 5 IN PTR svc1.testns.svc.'] },
    ]);
  });
});

// ------------------------------------------------------------------------------------- handler

function config(over: Partial<KubernetesConfig> = {}): KubernetesConfig {
  return { ...defaultConfig(ZONES), ...over };
}

const nextMarker: Next = (req) => {
  const m = req.reply(Rcode.REFUSED);
  m.answer.push({ name: 'next.', class: 1, ttl: 0, type: Type.TXT, data: ['next'] });
  return m;
};

async function ask(h: KubernetesHandler, name: string, type: number): Promise<Msg> {
  return serve(h, makeRequest(name, type), nextMarker);
}
const wentNext = (m: Msg) => m.rcode === Rcode.REFUSED && m.answer[0]?.name === 'next.';

describe('handler', () => {
  it('passes names outside its zones and non-IN classes to the next plugin', async () => {
    const h = new KubernetesHandler(config(), cluster());
    expect(wentNext(await ask(h, 'example.com.', Type.A))).toBe(true);
    expect(wentNext(await serve(h, makeRequest('svc1.testns.svc.cluster.local.', Type.A, { qclass: 3 }), nextMarker))).toBe(true);
    expect(wentNext(await ask(h, 'svc1.testns.svc.cluster.local.', Type.A))).toBe(false);
  });
  it('keeps the letter case of the question in the answer', async () => {
    const h = new KubernetesHandler(config(), cluster());
    const m = await ask(h, 'SVC1.TestNS.svc.Cluster.Local.', Type.A);
    expect(m.answer.map((r) => r.name)).toEqual(['SVC1.TestNS.svc.Cluster.Local.']);
    sortAndCheck(m, { rcode: Rcode.NOERROR, answer: ['svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1'] });
    // Port and protocol labels too compare case-insensitively.
    sortAndCheck(await ask(h, '_HTTP._Tcp.svc1.testns.svc.cluster.local.', Type.SRV), {
      answer: ['_http._tcp.svc1.testns.svc.cluster.local. 5 IN SRV 0 100 80 svc1.testns.svc.cluster.local.'],
    });
    // The shared lowercase reply is untouched.
    expect(h.reply('svc1.testns.svc.cluster.local.', Type.A).answer[0]!.name).toBe('svc1.testns.svc.cluster.local.');
  });
  it('refuses zone transfers', async () => {
    const h = new KubernetesHandler(config(), cluster());
    expect((await ask(h, 'cluster.local.', Type.AXFR)).rcode).toBe(Rcode.REFUSED);
    expect((await ask(h, 'cluster.local.', Type.IXFR)).rcode).toBe(Rcode.REFUSED);
  });
  it('fallthrough passes NXDOMAIN of the listed zones to the next plugin', async () => {
    const all = new KubernetesHandler(config({ fallthrough: ['.'] }), cluster());
    expect(wentNext(await ask(all, 'nosvc.testns.svc.cluster.local.', Type.A))).toBe(true);
    expect(wentNext(await ask(all, '99.0.0.10.in-addr.arpa.', Type.PTR))).toBe(true);
    // NODATA and positive answers stay.
    sortAndCheck(await ask(all, 'svc1.testns.svc.cluster.local.', Type.AAAA), { rcode: Rcode.NOERROR, answer: [] });
    sortAndCheck(await ask(all, 'svc1.testns.svc.cluster.local.', Type.A), { answer: ['svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1'] });
    // A CNAME chain ending in NXDOMAIN is an answer, not a missing name.
    expect(wentNext(await ask(all, 'extmissing.testns.svc.cluster.local.', Type.A))).toBe(false);

    const rev = new KubernetesHandler(config({ fallthrough: ['in-addr.arpa.', 'ip6.arpa.'] }), cluster());
    expect(wentNext(await ask(rev, '99.0.0.10.in-addr.arpa.', Type.PTR))).toBe(true);
    sortAndCheck(await ask(rev, 'nosvc.testns.svc.cluster.local.', Type.A), { rcode: Rcode.NXDOMAIN });

    const none = new KubernetesHandler(config(), cluster());
    sortAndCheck(await ask(none, 'nosvc.testns.svc.cluster.local.', Type.A), { rcode: Rcode.NXDOMAIN });
  });
  it('answers SERVFAIL instead of NXDOMAIN until synced, and what it knows already', async () => {
    let synced = false;
    const z = cluster();
    const h = new KubernetesHandler(config(), z, { synced: () => synced });
    sortAndCheck(await ask(h, 'nosvc.testns.svc.cluster.local.', Type.A), { rcode: Rcode.SERVFAIL, ns: [soaLine(z)] });
    sortAndCheck(await ask(h, 'svc1.testns.svc.cluster.local.', Type.A), { rcode: Rcode.NOERROR, answer: ['svc1.testns.svc.cluster.local. 5 IN A 10.0.0.1'] });
    const ft = new KubernetesHandler(config({ fallthrough: ['.'] }), z, { synced: () => synced });
    expect(wentNext(await ask(ft, 'nosvc.testns.svc.cluster.local.', Type.A))).toBe(true);
    synced = true;
    sortAndCheck(await ask(h, 'nosvc.testns.svc.cluster.local.', Type.A), { rcode: Rcode.NXDOMAIN });
  });
  it('caches replies until an event touches what they read', async () => {
    const z = cluster();
    const h = new KubernetesHandler(config(), z);
    const a1 = h.reply('svc1.testns.svc.cluster.local.', Type.A);
    const hd1 = h.reply('hdls1.testns.svc.cluster.local.', Type.A);
    const nx1 = h.reply('newsvc.testns.svc.cluster.local.', Type.A);
    expect(h.reply('svc1.testns.svc.cluster.local.', Type.A)).toBe(a1);
    expect(Object.isFrozen(a1) && Object.isFrozen(a1.answer[0])).toBe(true);

    // An unrelated service appears: svc1's and hdls1's replies stay, the negative one is rebuilt.
    z.upsertService(svc('testns', 'newsvc', { clusterIPs: ['10.0.0.50'] }));
    expect(h.reply('svc1.testns.svc.cluster.local.', Type.A)).toBe(a1);
    expect(h.reply('hdls1.testns.svc.cluster.local.', Type.A)).toBe(hd1);
    const nx2 = h.reply('newsvc.testns.svc.cluster.local.', Type.A);
    expect(nx2).not.toBe(nx1);
    sortAndCheck(nx2, { rcode: Rcode.NOERROR, answer: ['newsvc.testns.svc.cluster.local. 5 IN A 10.0.0.50'] });

    // An endpoint of hdls1 becomes ready: only hdls1's reply changes.
    z.upsertEndpointSlice(slice('testns', 'hdls1-v4', 'hdls1', [
      ep('172.0.0.2', { hostname: 'pet-0' }), ep('172.0.0.3'), ep('172.0.0.4'),
    ], [tcp('http', 8080)]));
    expect(h.reply('svc1.testns.svc.cluster.local.', Type.A)).toBe(a1);
    sortAndCheck(h.reply('hdls1.testns.svc.cluster.local.', Type.A), {
      answer: ['hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.2', 'hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.3', 'hdls1.testns.svc.cluster.local. 5 IN A 172.0.0.4'],
    });

    // svc1 changes its address; its PTRs follow.
    const ptr1 = h.reply('1.0.0.10.in-addr.arpa.', Type.PTR);
    z.upsertService(svc('testns', 'svc1', { clusterIPs: ['10.0.0.111'], ports: [tcp('http', 80)] }));
    sortAndCheck(h.reply('svc1.testns.svc.cluster.local.', Type.A), { answer: ['svc1.testns.svc.cluster.local. 5 IN A 10.0.0.111'] });
    expect(h.reply('1.0.0.10.in-addr.arpa.', Type.PTR)).not.toBe(ptr1);
    sortAndCheck(h.reply('1.0.0.10.in-addr.arpa.', Type.PTR), { rcode: Rcode.NXDOMAIN });
    sortAndCheck(h.reply('111.0.0.10.in-addr.arpa.', Type.PTR), { answer: ['111.0.0.10.in-addr.arpa. 5 IN PTR svc1.testns.svc.cluster.local.'] });

    // The namespace goes away: everything in it with it.
    z.deleteNamespace('testns');
    sortAndCheck(h.reply('svc1.testns.svc.cluster.local.', Type.A), { rcode: Rcode.NXDOMAIN });
    sortAndCheck(h.reply('111.0.0.10.in-addr.arpa.', Type.PTR), { rcode: Rcode.NXDOMAIN });
  });
  it('keeps the cache bounded', () => {
    const h = new KubernetesHandler(config(), cluster(), { cacheSize: 10 });
    for (let i = 0; i < 25; i++) h.reply(`n${i}.testns.svc.cluster.local.`, Type.A);
    expect(h.cached).toBeLessThanOrEqual(10);
  });
  it('attaches prebuilt wire when given a prebuild function', async () => {
    const h = new KubernetesHandler(config(), cluster(), {
      prebuild: () => ({ bytes: new Uint8Array([1]), qnameEnd: 0, ttlOffsets: new Uint32Array(0) }),
    });
    const m = await ask(h, 'SVC1.testns.svc.cluster.local.', Type.A);
    expect(m.wire?.bytes).toEqual(new Uint8Array([1]));
    // With wire the server patches the case; the shared reply itself is returned.
    expect(m).toBe(h.reply('svc1.testns.svc.cluster.local.', Type.A));
  });
  it('tells the namespace of a pod address (autopath)', () => {
    const h = new KubernetesHandler(config(), cluster());
    expect(h.namespaceOfIP('172.0.0.2')).toBe('testns');
    expect(h.namespaceOfIP('172.0.0.99')).toBeUndefined();
    expect(h.zones).toEqual(ZONES);
  });
});

describe('handler: reply memo terms', () => {
  /** Serve a query and hand back the request, with the terms the handler left on it. */
  async function asked(h: KubernetesHandler, name: string, type: number = Type.A): Promise<Request> {
    const req = makeRequest(name, type);
    await serve(h, req, nextMarker);
    return req;
  }

  it('a reply depends on the zone cells it read: stale after a change to them, current after others', async () => {
    const z = cluster();
    const h = new KubernetesHandler(config(), z);
    const svc1 = await asked(h, 'svc1.testns.svc.cluster.local.');
    const upper = await asked(h, 'SVC1.TestNS.svc.cluster.local.');
    const dual = await asked(h, 'svcdual.testns.svc.cluster.local.', Type.AAAA);
    const hdls = await asked(h, 'hdls1.testns.svc.cluster.local.');
    const ptr = await asked(h, '1.0.0.10.in-addr.arpa.', Type.PTR);
    for (const r of [svc1, upper, dual, hdls, ptr]) {
      expect(r.memoOff).toBe(false);
      expect(r.memoDep?.valid()).toBe(true);
    }
    // A small validity object: the memo keeps it, and must not keep the reply alive with it.
    expect('msg' in svc1.memoDep!).toBe(false);

    z.upsertService(svc('testns', 'svcdual', { clusterIPs: ['10.0.0.2', 'fd00::22'], ports: [tcp('http', 80)] }));
    expect(dual.memoDep!.valid()).toBe(false);
    for (const r of [svc1, upper, hdls, ptr]) expect(r.memoDep!.valid()).toBe(true);

    z.upsertEndpointSlice(slice('testns', 'hdls1-v4', 'hdls1', [ep('172.0.0.2', { hostname: 'pet-0' })], [tcp('http', 8080)]));
    expect(hdls.memoDep!.valid()).toBe(false);
    for (const r of [svc1, upper, ptr]) expect(r.memoDep!.valid()).toBe(true);

    z.deleteService('testns', 'svc1');
    for (const r of [svc1, upper, ptr]) expect(r.memoDep!.valid()).toBe(false);
    // Asked again: the new reply (NXDOMAIN now) is current.
    const gone = await asked(h, 'svc1.testns.svc.cluster.local.');
    expect(gone.memoDep!.valid()).toBe(true);
  });

  it('a new Service makes an NXDOMAIN stale (negative answers, NODATA too for its serial, read the whole zone); positive answers stay', async () => {
    const z = cluster();
    const h = new KubernetesHandler(config(), z);
    const nx = await asked(h, 'newsvc.testns.svc.cluster.local.');
    const nodata = await asked(h, 'svc1.testns.svc.cluster.local.', Type.AAAA); // its SOA carries the serial
    const positive = await asked(h, 'svc1.testns.svc.cluster.local.');
    expect(nx.memoOff).toBe(false);
    expect(nx.memoDep!.valid()).toBe(true);
    z.upsertService(svc('testns', 'newsvc', { clusterIPs: ['10.0.0.50'] }));
    expect(nx.memoDep!.valid()).toBe(false);
    expect(nodata.memoDep!.valid()).toBe(false);
    expect(positive.memoDep!.valid()).toBe(true);
  });

  it('before the first sync an NXDOMAIN (answered SERVFAIL) is not reusable; what it knows already is', async () => {
    let synced = false;
    const h = new KubernetesHandler(config(), cluster(), { synced: () => synced });
    const nx = await asked(h, 'nosvc.testns.svc.cluster.local.');
    expect(nx.memoOff).toBe(true);
    expect(nx.memoDep).toBeUndefined();
    const known = await asked(h, 'svc1.testns.svc.cluster.local.');
    expect(known.memoOff).toBe(false);
    expect(known.memoDep!.valid()).toBe(true);
    synced = true;
    const later = await asked(h, 'nosvc.testns.svc.cluster.local.');
    expect(later.memoOff).toBe(false);
    expect(later.memoDep!.valid()).toBe(true);
  });

  it('a fallthrough depends on the zone that decided it; names outside its zones are left to the next plugin', async () => {
    const z = cluster();
    const h = new KubernetesHandler(config({ fallthrough: ['.'] }), z, { synced: () => false });
    const passed = await asked(h, 'nosvc.testns.svc.cluster.local.');
    expect(passed.memoOff).toBe(false);
    expect(passed.memoDep!.valid()).toBe(true);
    const outside = await asked(h, 'example.com.');
    expect(outside.memoDep).toBeUndefined();
    expect(outside.memoOff).toBe(false);
    expect((await asked(h, 'svc1.testns.svc.cluster.local.')).memoDep!.valid()).toBe(true);
    // The name comes into existence: what the next plugin said for it is out of date.
    z.upsertService({ namespace: 'testns', name: 'nosvc', type: 'ClusterIP', clusterIPs: ['10.0.0.99'], externalName: '', ports: [], publishNotReadyAddresses: false });
    expect(passed.memoDep!.valid()).toBe(false);
  });
});
