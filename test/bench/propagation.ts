// Propagation: how long after a change reaches the API server does a UDP query get the new answer?
// Changes alternate between moving a ClusterIP Service to a new cluster IP and adding a ready endpoint
// to a headless Service's EndpointSlice; after each `api.update()` the bench asks the server for the
// Service's A records back to back (the next query leaves as soon as the previous reply arrived, ~0.1-
// 0.3 ms apart on loopback) until the new address is in the answer.
import dgram from 'node:dgram';
import type { KubeApiServer } from '../kubeapi/server.ts';
import type { BigClusterInfo } from './cluster.ts';
import { ipAt } from './cluster.ts';
import { A, parseReply, query } from './wire.ts';

export interface PropagationResult {
  changes: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Changes whose new answer did not show within the per-change timeout. */
  timeouts: number;
  /** Queries sent per change (median). */
  queriesPerChange: number;
}

const newIPBase = ((10 << 24) >>> 0) + (100 << 16); // 10.100.0.0/16: never used by the generated cluster

/** A UDP client that sends one query at a time and waits for its reply (or `timeoutMs`). */
class Poller {
  private readonly sock = dgram.createSocket('udp4');
  private id = 1;
  private waiting: ((b: Uint8Array | undefined) => void) | undefined;
  private waitingId = -1;
  private readonly port: number;

  constructor(port: number) {
    this.port = port;
    this.sock.on('message', (m) => {
      const id = (m[0]! << 8) | m[1]!;
      if (id === this.waitingId && this.waiting) { const w = this.waiting; this.waiting = undefined; w(m); }
    });
  }

  ask(q: Uint8Array, timeoutMs = 200): Promise<Uint8Array | undefined> {
    this.id = (this.id + 1) & 0xffff;
    q[0] = this.id >> 8; q[1] = this.id & 0xff;
    this.waitingId = this.id;
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.waiting = undefined; resolve(undefined); }, timeoutMs);
      this.waiting = (b) => { clearTimeout(t); resolve(b); };
      this.sock.send(q, this.port, '127.0.0.1');
    });
  }

  close(): void { this.sock.close(); }
}

function pct(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : NaN;
}

/** Post `changes` changes one at a time and time each until the DNS answer shows it. */
export async function measurePropagation(api: KubeApiServer, dnsPort: number, info: BigClusterInfo, changes: number, timeoutMs = 5000): Promise<PropagationResult> {
  const poller = new Poller(dnsPort);
  const times: number[] = [];
  const queries: number[] = [];
  let timeouts = 0;
  try {
    for (let i = 0; i < changes; i++) {
      const newIP = ipAt(newIPBase, i + 1);
      let qname: string;
      let change: () => void;
      if (i % 2 === 0 && info.clusterIPNames.length > 0) {
        const s = info.clusterIPNames[(i >> 1) % info.clusterIPNames.length]!;
        const svc = api.get('Service', s.ns, s.name)!;
        const spec = svc.spec as { clusterIP: string; clusterIPs: string[] };
        spec.clusterIP = newIP;
        spec.clusterIPs = [newIP];
        qname = `${s.name}.${s.ns}.svc.cluster.local`;
        change = () => api.update(svc);
      } else {
        const s = info.headlessNames[(i >> 1) % info.headlessNames.length]!;
        const slice = api.get('EndpointSlice', s.ns, `${s.name}-x7k2p`)!;
        (slice.endpoints as unknown[]).push({ addresses: [newIP], conditions: { ready: true } });
        qname = `${s.name}.${s.ns}.svc.cluster.local`;
        change = () => api.update(slice);
      }
      // Warm the server's prebuilt answer for the name first, as a busy cluster would have it.
      await poller.ask(query(qname, A));
      const t0 = performance.now();
      change();
      const q = query(qname, A);
      let n = 0;
      let seen = false;
      while (performance.now() - t0 < timeoutMs) {
        n++;
        const r = await poller.ask(q);
        if (r && parseReply(r).addresses.includes(newIP)) { seen = true; break; }
      }
      if (seen) times.push(performance.now() - t0);
      else timeouts++;
      queries.push(n);
    }
  } finally {
    poller.close();
  }
  times.sort((a, b) => a - b);
  queries.sort((a, b) => a - b);
  return { changes, p50Ms: pct(times, 0.5), p99Ms: pct(times, 0.99), maxMs: times.at(-1) ?? NaN, timeouts, queriesPerChange: pct(queries, 0.5) };
}
