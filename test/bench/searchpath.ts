// Search path: external names looked up the way a pod's glibc resolver does with the kubelet's
// resolv.conf (`search <ns>.svc.cluster.local svc.cluster.local cluster.local`, `options ndots:5`):
// a name with fewer than 5 dots is tried with each search domain first, A and AAAA sent together per
// candidate, moving on while both are NXDOMAIN, and finally as given. The client runs in the bench
// process (the client core), from a loopback address that a Pod in the zone owns, so `autopath
// @kubernetes` (with `pods verified`) recognises it. Reported: lookups per second at a fixed number of
// lookups in flight, DNS queries on the wire per lookup, upstream queries per lookup, lookup latency.
import dgram from 'node:dgram';
import { AAAA, A, parseReply, query } from './wire.ts';

export interface SearchPathResult {
  lookups: number;
  lookupsPerSec: number;
  queriesPerLookup: number;
  p50Ms: number;
  p99Ms: number;
  /** Lookups that ended without an address (all candidates negative, or a timeout). */
  failed: number;
  /** Queries that got no reply within the timeout (resent). */
  timeouts: number;
}

export interface SearchPathOptions {
  port: number;
  /** The pod address the client sends from (a 127.x address a Pod in `namespace` has). */
  clientIP: string;
  namespace: string;
  names: string[];
  seconds: number;
  warmupSeconds: number;
  inFlight: number;
  timeoutMs?: number;
  /** Look every name up once (32 at a time) before the warm-up. */
  warmAllNames?: boolean;
  /** Called right before and after the measured window (e.g. to read the upstream's counter). */
  onMeasureStart?: () => Promise<void>;
  onMeasureEnd?: () => Promise<void>;
}

const NXDOMAIN = 3;

function pct(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : NaN;
}

export async function runSearchPath(o: SearchPathOptions): Promise<SearchPathResult> {
  const search = [`${o.namespace}.svc.cluster.local`, 'svc.cluster.local', 'cluster.local'];
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(0, o.clientIP, () => resolve());
  });
  const pending = new Map<number, (r: { rcode: number; answers: number } | undefined) => void>();
  sock.on('message', (m) => {
    const r = parseReply(m);
    const cb = pending.get(r.id);
    if (cb) { pending.delete(r.id); cb({ rcode: r.rcode, answers: r.addresses.length }); }
  });
  let nextId = 1;
  let sent = 0;
  let timeouts = 0;
  const timeoutMs = o.timeoutMs ?? 1000;
  const ask = (name: string, type: number): Promise<{ rcode: number; answers: number }> => {
    const attempt = (): Promise<{ rcode: number; answers: number } | undefined> => {
      let id = nextId;
      while (pending.has(id)) id = (id % 65535) + 1;
      nextId = (id % 65535) + 1;
      const q = query(name, type, id);
      sent++;
      return new Promise((resolve) => {
        const t = setTimeout(() => { pending.delete(id); resolve(undefined); }, timeoutMs);
        pending.set(id, (r) => { clearTimeout(t); resolve(r); });
        sock.send(q, o.port, '127.0.0.1');
      });
    };
    return (async () => {
      for (let i = 0; i < 3; i++) {
        const r = await attempt();
        if (r) return r;
        timeouts++;
      }
      return { rcode: 2, answers: 0 };
    })();
  };
  /** One getaddrinfo(AF_UNSPEC)-like lookup; true when it found an address. */
  const lookup = async (name: string): Promise<boolean> => {
    const dots = name.split('.').length - 1;
    const candidates = dots >= 5 ? [`${name}.`, ...search.map((s) => `${name}.${s}`)] : [...search.map((s) => `${name}.${s}`), `${name}.`];
    for (const c of candidates) {
      const [a, aaaa] = await Promise.all([ask(c, A), ask(c, AAAA)]);
      if (a.rcode === NXDOMAIN && aaaa.rcode === NXDOMAIN) continue;
      return a.answers + aaaa.answers > 0;
    }
    return false;
  };

  if (o.warmAllNames) {
    // Every name once first, so the measured windows see the steady state (cached upstream answers).
    let next = 0;
    const pass = async () => { while (next < o.names.length) await lookup(o.names[next++]!); };
    await Promise.all(Array.from({ length: 32 }, pass));
  }

  let measuring = false;
  let stop = false;
  let lookups = 0;
  let failed = 0;
  const latencies: number[] = [];
  let sentAtStart = 0;
  let i = 0;
  const worker = async () => {
    while (!stop) {
      const name = o.names[i++ % o.names.length]!;
      const t0 = performance.now();
      const ok = await lookup(name);
      if (measuring && !stop) {
        lookups++;
        if (!ok) failed++;
        latencies.push(performance.now() - t0);
      }
    }
  };
  const workers = Array.from({ length: o.inFlight }, worker);
  await new Promise((r) => setTimeout(r, o.warmupSeconds * 1000));
  await o.onMeasureStart?.();
  measuring = true;
  sentAtStart = sent;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  const elapsed = (performance.now() - t0) / 1000;
  const sentInWindow = sent - sentAtStart;
  stop = true;
  await o.onMeasureEnd?.();
  await Promise.all(workers);
  sock.close();
  latencies.sort((a, b) => a - b);
  return {
    lookups, lookupsPerSec: lookups / elapsed, queriesPerLookup: lookups ? sentInWindow / lookups : NaN,
    p50Ms: pct(latencies, 0.5), p99Ms: pct(latencies, 0.99), failed, timeouts,
  };
}
