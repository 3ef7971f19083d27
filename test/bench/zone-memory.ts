// The zone's own heap footprint, in process (the fast loop for issue 6): build a KubeZone from the
// slim objects the API source would hand over for the memory bench's cluster shape (test/bench/
// cluster.ts loadBigCluster: 100 namespaces, half headless Services with 18 endpoints, half ClusterIP
// with 2, every endpoint with a targetRef and a nodeName, every other headless Service with
// hostnames), drop the slim objects, force a GC and read heapUsed. Bytes per Service and per endpoint
// are differences between a zone with services only and one with endpoints too.
//
//   node --expose-gc test/bench/zone-memory.ts [services=10000] [pods]
import { KubeZone } from '../../plugins/kubernetes/zone.ts';
import type { SlimEndpointSlice, SlimPod, SlimService } from '../../plugins/kubernetes/objects.ts';
import { ipAt, podIPBase, serviceIPBase } from './cluster.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

interface Objects { services: SlimService[]; slices: SlimEndpointSlice[]; pods: SlimPod[]; endpoints: number }

function objects(nServices: number, withEndpoints: boolean, withPods: boolean): Objects {
  const ns = Array.from({ length: 100 }, (_, i) => `ns-${String(i).padStart(3, '0')}`);
  const services: SlimService[] = [];
  const slices: SlimEndpointSlice[] = [];
  const pods: SlimPod[] = [];
  let ep = 0;
  const half = nServices / 2;
  for (let i = 0; i < nServices; i++) {
    const headless = i < half;
    const k = headless ? i : i - half;
    const namespace = ns[k % ns.length]!;
    const name = headless ? `sts-${k}` : `web-${k}`;
    const ports = headless
      ? [{ name: 'peer', port: 7000, protocol: 'TCP' as const }, { name: 'client', port: 7001, protocol: 'TCP' as const }]
      : [{ name: 'http', port: 80, protocol: 'TCP' as const }, { name: 'https', port: 443, protocol: 'TCP' as const }];
    services.push({
      namespace, name, type: 'ClusterIP', clusterIPs: headless ? ['None'] : [ipAt(serviceIPBase, 16 + k)],
      externalName: '', ports, publishNotReadyAddresses: false,
    });
    if (!withEndpoints) continue;
    const count = headless ? 18 : 2;
    const endpoints = [];
    for (let j = 0; j < count; j++) {
      const ip = ipAt(podIPBase, ep++);
      const podName = `${name}-${j}`;
      endpoints.push({
        addresses: [ip], ready: true, serving: true, terminating: false, podName, nodeName: `node-${ep % 50}`,
        ...(headless && k % 2 === 0 ? { hostname: podName } : {}),
      });
      if (withPods) pods.push({ namespace, name: podName, ips: [ip] });
    }
    slices.push({
      namespace, name: `${name}-x7k2p`, service: name, addressType: 'IPv4',
      ports: headless ? ports : ports.map((p) => ({ ...p, port: p.port + 8000 })), endpoints,
    });
  }
  return { services, slices, pods, endpoints: ep };
}

function heap(): number {
  for (let i = 0; i < 3; i++) gc!();
  return process.memoryUsage().heapUsed;
}

/** Build a zone from the objects, drop the objects, and weigh the zone: heap with it minus heap without. */
function measure(nServices: number, withEndpoints: boolean, withPods: boolean): { bytes: number; ms: number; endpoints: number } {
  let o: Objects | undefined = objects(nServices, withEndpoints, withPods);
  const endpoints = o.endpoints;
  const t0 = performance.now();
  let zone: KubeZone | undefined = new KubeZone({ pods: withPods });
  zone.replaceAll('Namespace', Array.from({ length: 100 }, (_, i) => ({ name: `ns-${String(i).padStart(3, '0')}`, labels: {} })));
  zone.replaceAll('Service', o.services);
  zone.replaceAll('EndpointSlice', o.slices);
  if (withPods) zone.replaceAll('Pod', o.pods);
  const ms = performance.now() - t0;
  o = undefined;
  const withZone = heap();
  void zone.counts();
  zone = undefined;
  return { bytes: withZone - heap(), ms, endpoints };
}

const n = Number(process.argv[2] ?? 10000);
const pods = process.argv.includes('pods');
const mib = (b: number) => (b / 1048576).toFixed(1);
const svcOnly = measure(n, false, false);
const sBytes = svcOnly.bytes;
const full = measure(n, true, false);
const eBytes = (full.bytes - sBytes) / full.endpoints;
console.log(`services only: ${n} services, zone heap ${mib(sBytes)} MiB, ${Math.round(sBytes / n)} B/Service, build ${svcOnly.ms.toFixed(0)} ms`);
console.log(`with endpoints: ${full.endpoints} endpoints, zone heap ${mib(full.bytes)} MiB, ${Math.round(eBytes)} B/endpoint, build ${full.ms.toFixed(0)} ms`);
if (pods) {
  const withPods = measure(n, true, true);
  console.log(`with pods: zone heap ${mib(withPods.bytes)} MiB, ${Math.round((withPods.bytes - full.bytes) / withPods.endpoints)} B/Pod, build ${withPods.ms.toFixed(0)} ms`);
}
