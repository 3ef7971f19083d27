import { describe, expect, it } from 'vitest';
import { loadYaml, V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import { describeObject, toSlimEndpointSlice, toSlimNamespace, toSlimPod, toSlimService } from './convert.ts';
import { endpointSlice, externalName, headless, namespace, pod, service } from '../../test/kubeapi/objects.ts';

const now = 1_700_000_000_000;

describe('toSlimService', () => {
  it('converts a ClusterIP service', () => {
    const svc = service('shop', 'web', { clusterIP: '10.96.0.5', ports: [{ name: 'http', port: 80 }, { port: 53, protocol: 'UDP' }] });
    expect(toSlimService(svc, { now })).toEqual({
      namespace: 'shop', name: 'web', type: 'ClusterIP', clusterIPs: ['10.96.0.5'], externalName: '',
      ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: '', port: 53, protocol: 'UDP' }],
      publishNotReadyAddresses: false, changedAt: now,
    });
  });

  it('prefers spec.clusterIPs, falls back to spec.clusterIP, defaults protocol and type', () => {
    const base = { metadata: { name: 'a', namespace: 'ns' } };
    expect(toSlimService({ ...base, spec: { clusterIP: '10.0.0.1', clusterIPs: ['10.0.0.1', 'fd00::1'] } })).toMatchObject({ clusterIPs: ['10.0.0.1', 'fd00::1'], type: 'ClusterIP' });
    expect(toSlimService({ ...base, spec: { clusterIP: '10.0.0.1' } })).toMatchObject({ clusterIPs: ['10.0.0.1'] });
    expect(toSlimService({ ...base, spec: { clusterIPs: [], clusterIP: '10.0.0.2' } })).toMatchObject({ clusterIPs: ['10.0.0.2'] });
    expect(toSlimService({ ...base, spec: { ports: [{ port: 1 }] } })).toMatchObject({ clusterIPs: [], ports: [{ name: '', port: 1, protocol: 'TCP' }] });
    expect(toSlimService(base)).toMatchObject({ clusterIPs: [], ports: [] });
  });

  it('keeps headless and ExternalName services', () => {
    expect(toSlimService(headless('data', 'pg', { publishNotReadyAddresses: true }))).toMatchObject({ clusterIPs: ['None'], publishNotReadyAddresses: true });
    expect(toSlimService(externalName('shop', 'checkout', 'Payments.Example.COM.'))).toMatchObject({ type: 'ExternalName', externalName: 'payments.example.com', clusterIPs: [] });
  });

  it('uses the default namespace only when asked', () => {
    const obj = { metadata: { name: 'a' }, spec: {} };
    expect(toSlimService(obj)).toBe('no metadata.namespace');
    expect(toSlimService(obj, { defaultNamespace: 'default' })).toMatchObject({ namespace: 'default' });
  });

  it.each([
    [null, 'not an object'],
    [{ kind: 'Service' }, 'no metadata'],
    [{ metadata: { namespace: 'ns' } }, 'no metadata.name'],
    [{ metadata: { name: 'Web', namespace: 'ns' } }, 'invalid Service name "Web"'],
    [{ metadata: { name: 'a.b', namespace: 'ns' } }, 'invalid Service name "a.b"'],
    [{ metadata: { name: 'a', namespace: 'Bad_NS' } }, 'invalid namespace "Bad_NS"'],
    [{ metadata: { name: 'a', namespace: 'ns', labels: { x: 1 } } }, 'metadata.labels["x"] is not a string'],
    [{ metadata: { name: 'a', namespace: 'ns' }, spec: 'x' }, 'spec is not an object'],
    [{ metadata: { name: 'a', namespace: 'ns' }, spec: { type: 'Weird' } }, 'unknown spec.type "Weird"'],
    [{ metadata: { name: 'a', namespace: 'ns' }, spec: { clusterIP: '10.0.0.256' } }, 'invalid cluster IP "10.0.0.256"'],
    [{ metadata: { name: 'a', namespace: 'ns' }, spec: { clusterIPs: ['None', '10.0.0.1'] } }, 'spec.clusterIPs mixes "None" with addresses'],
    [{ metadata: { name: 'a', namespace: 'ns' }, spec: { clusterIPs: 'x' } }, 'spec.clusterIPs is not a list'],
    [{ metadata: { name: 'a', namespace: 'ns' }, spec: { clusterIP: 7 } }, 'spec.clusterIP is not a string'],
    [{ metadata: { name: 'a', namespace: 'ns' }, spec: { ports: {} } }, 'spec.ports is not a list'],
    [{ metadata: { name: 'a', namespace: 'ns' }, spec: { ports: [{ port: '80' }] } }, 'spec.ports[0].port "80" is not a port number'],
    [{ metadata: { name: 'a', namespace: 'ns' }, spec: { ports: [{ name: 'x' }] } }, 'spec.ports[0].port is missing'],
    [{ metadata: { name: 'a', namespace: 'ns' }, spec: { ports: [{ port: 1, protocol: 'tcp' }] } }, 'spec.ports[0].protocol "tcp" is not TCP, UDP or SCTP'],
    [{ metadata: { name: 'a', namespace: 'ns' }, spec: { type: 'ExternalName' } }, 'ExternalName service without spec.externalName'],
    [{ metadata: { name: 'a', namespace: 'ns' }, spec: { type: 'ExternalName', externalName: 'a b' } }, 'invalid spec.externalName "a b"'],
  ])('rejects %j', (obj, reason) => {
    expect(toSlimService(obj)).toBe(reason);
  });
});

describe('toSlimEndpointSlice', () => {
  it('converts endpoints with API condition defaults', () => {
    const changed = new Date('2024-05-01T10:00:00Z');
    const slice = endpointSlice('shop', 'web', [
      { ip: '10.244.0.1', hostname: 'web-0', pod: 'web-0', nodeName: 'n1' },
      { ip: '10.244.0.2', ready: false, serving: true, terminating: true },
    ], [{ name: 'http', port: 8080 }], { changedAt: changed });
    expect(toSlimEndpointSlice(slice)).toEqual({
      namespace: 'shop', name: 'web-ipv4', service: 'web', addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: [
        { addresses: ['10.244.0.1'], hostname: 'web-0', podName: 'web-0', nodeName: 'n1', ready: true, serving: true, terminating: false },
        { addresses: ['10.244.0.2'], ready: false, serving: true, terminating: true },
      ],
      changedAt: changed.getTime(),
    });
  });

  it('handles IPv6, FQDN, empty and port-less slices', () => {
    expect(toSlimEndpointSlice(endpointSlice('a', 's', ['fd00::1'], [], { addressType: 'IPv6' }))).toMatchObject({ addressType: 'IPv6', endpoints: [{ addresses: ['fd00::1'] }] });
    expect(toSlimEndpointSlice(endpointSlice('a', 's', [{ addresses: ['db.example.com'] }], [], { addressType: 'FQDN' }))).toMatchObject({ addressType: 'FQDN' });
    const empty = { metadata: { name: 's-1', namespace: 'a', labels: { 'kubernetes.io/service-name': 's' } }, addressType: 'IPv4', endpoints: null, ports: [{ name: 'all' }] };
    expect(toSlimEndpointSlice(empty)).toMatchObject({ endpoints: [], ports: [] });
    // targetRef to something other than a Pod names no pod.
    const node = endpointSlice('a', 's', ['10.0.0.1']);
    (node.endpoints as Array<Record<string, unknown>>)[0]!.targetRef = { kind: 'Node', name: 'n1' };
    expect((toSlimEndpointSlice(node) as { endpoints: unknown[] }).endpoints[0]).not.toHaveProperty('podName');
    // An unparseable trigger time is not an error.
    const odd = endpointSlice('a', 's', ['10.0.0.1']);
    odd.metadata.annotations = { 'endpoints.kubernetes.io/last-change-trigger-time': 'soon' };
    expect(toSlimEndpointSlice(odd)).not.toHaveProperty('changedAt');
  });

  it('returns null for slices that belong to no service', () => {
    const s = endpointSlice('a', 's', ['10.0.0.1']);
    delete s.metadata.labels!['kubernetes.io/service-name'];
    expect(toSlimEndpointSlice(s)).toBeNull();
  });

  it.each([
    [endpointSlice('a', 's', ['10.0.0.1'], [], { addressType: 'IPv6' }), 'endpoints[0]: invalid IPv6 address "10.0.0.1"'],
    [endpointSlice('a', 's', ['fd00::1']), 'endpoints[0]: invalid IPv4 address "fd00::1"'],
    [endpointSlice('a', 's', [{ addresses: [] }]), 'endpoints[0].addresses is empty'],
    [endpointSlice('a', 's', [{ ip: '10.0.0.1', hostname: 'Bad_Host' }]), 'endpoints[0]: invalid hostname "Bad_Host"'],
    [{ ...endpointSlice('a', 's', []), addressType: 'IPv5' }, 'unknown addressType "IPv5"'],
    [{ ...endpointSlice('a', 's', []), endpoints: 'x' }, 'endpoints is not a list'],
    [{ ...endpointSlice('a', 's', []), endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: 'yes' } }] }, 'endpoints[0].conditions.ready is not a boolean'],
    [{ ...endpointSlice('a', 's', []), ports: [{ port: 0 }] }, 'ports[0].port 0 is not a port number'],
  ])('rejects bad slice %#', (obj, reason) => {
    expect(toSlimEndpointSlice(obj)).toBe(reason);
  });
});

describe('toSlimNamespace and toSlimPod', () => {
  it('converts namespaces', () => {
    expect(toSlimNamespace(namespace('shop', { team: 'a' }))).toEqual({ name: 'shop', labels: { 'kubernetes.io/metadata.name': 'shop', team: 'a' } });
    expect(toSlimNamespace({ metadata: { name: 'x' } })).toEqual({ name: 'x', labels: {} });
    expect(toSlimNamespace({ metadata: { name: 'X' } })).toBe('invalid Namespace name "X"');
  });

  it('keeps only running, non-terminating pods with IPs', () => {
    expect(toSlimPod(pod('shop', 'web-1', '10.244.0.1', 'Running', { ips: ['10.244.0.1', 'fd00::1'] }))).toEqual({ namespace: 'shop', name: 'web-1', ips: ['10.244.0.1', 'fd00::1'] });
    expect(toSlimPod({ metadata: { name: 'p', namespace: 'a' }, status: { phase: 'Running', podIP: '10.0.0.9' } })).toMatchObject({ ips: ['10.0.0.9'] });
    expect(toSlimPod({ metadata: { name: 'kp', namespace: 'kube-system' }, spec: { hostNetwork: true }, status: { phase: 'Running', podIP: '10.0.0.2' } })).toEqual({ namespace: 'kube-system', name: 'kp', ips: ['10.0.0.2'], hostNetwork: true });
    expect(toSlimPod(pod('shop', 'p', '10.244.0.1', 'Pending'))).toBeNull();
    expect(toSlimPod(pod('shop', 'p', '10.244.0.1', 'Succeeded'))).toBeNull();
    expect(toSlimPod(pod('shop', 'p', '10.244.0.1', 'Running', { deleting: true }))).toBeNull();
    expect(toSlimPod(pod('shop', 'p', '', 'Running'))).toBeNull();
    expect(toSlimPod({ metadata: { name: 'p', namespace: 'a' }, status: { phase: 'Running', podIPs: [{ ip: 'x' }] } })).toBe('invalid status.podIPs[0] "x"');
  });
});

describe('client-node class instances', () => {
  it('converts typed objects, whose timestamps are Dates', () => {
    // (loadYaml deserializes through the same ObjectSerializer as the typed list calls.)
    const svc = loadYaml<V1Service>('apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop, creationTimestamp: "2024-01-01T00:00:00Z"}\nspec: {clusterIP: 10.96.0.7, ports: [{name: http, port: 80}]}\n');
    expect(svc).toBeInstanceOf(V1Service);
    expect(svc.metadata!.creationTimestamp).toBeInstanceOf(Date);
    expect(toSlimService(svc, { now })).toMatchObject({ name: 'web', clusterIPs: ['10.96.0.7'], ports: [{ name: 'http', port: 80, protocol: 'TCP' }] });

    const raw = endpointSlice('shop', 'web', [{ ip: '10.244.0.1', pod: 'web-0' }], [{ name: 'http', port: 80 }], { changedAt: new Date('2024-02-02T00:00:00Z') });
    const slice = loadYaml<V1EndpointSlice>(JSON.stringify(raw));
    expect(slice).toBeInstanceOf(V1EndpointSlice);
    expect(toSlimEndpointSlice(slice)).toEqual(toSlimEndpointSlice(raw));

    const deleting = loadYaml<V1Pod>(JSON.stringify(pod('shop', 'p', '10.0.0.1', 'Running', { deleting: true })));
    expect(deleting.metadata!.deletionTimestamp).toBeInstanceOf(Date);
    expect(toSlimPod(deleting)).toBeNull();
    const running = loadYaml<V1Pod>(JSON.stringify(pod('shop', 'p', '10.0.0.1')));
    expect(toSlimPod(running)).toEqual({ namespace: 'shop', name: 'p', ips: ['10.0.0.1'] });
  });
});

describe('robustness', () => {
  it('never throws on garbage', () => {
    const garbage: unknown[] = [undefined, null, 0, 'x', [], {}, { metadata: null }, { metadata: [] }, { metadata: { name: 5 } },
      { metadata: { name: 'a', namespace: 'b' }, spec: [], status: 'x', endpoints: [null, 1, 'x'], addressType: 'IPv4' },
      { metadata: { name: 'a', namespace: 'b', labels: { 'kubernetes.io/service-name': 's' } }, addressType: 'IPv4', endpoints: [{ addresses: [1] }] },
      { metadata: { name: 'a', namespace: 'b' }, spec: { ports: [null] } },
      { metadata: { name: 'a', namespace: 'b' }, status: { phase: 'Running', podIPs: [null] } }];
    for (const g of garbage) {
      for (const f of [toSlimService, toSlimEndpointSlice, toSlimNamespace, toSlimPod]) {
        expect(() => f(g)).not.toThrow();
        const r = f(g);
        expect(r === null || typeof r === 'string' || typeof r === 'object').toBe(true);
      }
      expect(() => describeObject(g)).not.toThrow();
    }
    expect(describeObject({ metadata: { name: 'a', namespace: 'b' } })).toBe('b/a');
    expect(describeObject({})).toBe('<unnamed>');
  });
});
