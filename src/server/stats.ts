// coredns_dns_* metrics, recorded by the server after each write. Children are resolved once per
// (listener, zone) and then found by small-integer indexes: a query costs a few array reads and
// property increments, no string building and no prom-client calls (src/fastmetrics.ts).
import type { MemoCounts } from './memo.ts';
import type { Metrics } from '../metrics.ts';
import { durationBuckets, sizeBuckets } from '../metrics.ts';
import { type CounterChild, type FastCounter, type FastHistogram, type HistogramChild } from '../fastmetrics.ts';
import { rcodeName } from '../dns/types.ts';
import { MonotonicTotal, readUdpTotals } from './udpstats.ts';

// CoreDNS labels these query types by name and everything else as "other".
const namedTypes: Record<number, string> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 35: 'NAPTR',
  43: 'DS', 46: 'RRSIG', 47: 'NSEC', 48: 'DNSKEY', 50: 'NSEC3', 64: 'SVCB', 65: 'HTTPS', 251: 'IXFR', 252: 'AXFR', 255: 'ANY',
};
export function typeLabel(t: number): string { return namedTypes[t] ?? 'other'; }

/** qtype → small index (0 = "other"), a 64 KiB table read once per query. */
const typeNames = ['other', ...new Set(Object.values(namedTypes))];
const typeIndex = new Uint8Array(65536);
for (const [t, n] of Object.entries(namedTypes)) typeIndex[Number(t)] = typeNames.indexOf(n);

export interface ServerMetricFamilies {
  requests: FastCounter;
  doRequests: FastCounter;
  responses: FastCounter;
  duration: FastHistogram;
  requestSize: FastHistogram;
  responseSize: FastHistogram;
  panics: CounterChild;
}

export function serverMetricFamilies(m: Metrics): ServerMetricFamilies {
  return {
    requests: m.fastCounter('coredns_dns_requests_total', 'Counter of DNS requests made per zone, protocol and family.', ['server', 'zone', 'view', 'proto', 'family', 'type']),
    doRequests: m.fastCounter('coredns_dns_do_requests_total', 'Counter of DNS requests with DO bit set per zone.', ['server', 'zone', 'view']),
    responses: m.fastCounter('coredns_dns_responses_total', 'Counter of response status codes.', ['server', 'zone', 'view', 'rcode', 'plugin']),
    duration: m.fastHistogram('coredns_dns_request_duration_seconds', 'Histogram of the time (in seconds) each request took per zone.', ['server', 'zone', 'view', 'type'], durationBuckets),
    requestSize: m.fastHistogram('coredns_dns_request_size_bytes', 'Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.', ['server', 'zone', 'view', 'proto'], sizeBuckets),
    responseSize: m.fastHistogram('coredns_dns_response_size_bytes', 'Size of the returned response in bytes.', ['server', 'zone', 'view', 'proto'], sizeBuckets),
    panics: m.fastCounter('coredns_panics_total', 'A metrics that counts the number of panics.').labels(),
  };
}

/** The children for one (server, zone) pair: one per listener and block zone, created at setup. */
export class ZoneStats {
  private readonly f: ServerMetricFamilies;
  private readonly server: string;
  private readonly zone: string;
  /** [proto*2 + family][typeIndex] */
  private readonly req: Array<Array<CounterChild | undefined>> = [[], [], [], []];
  private readonly dur: Array<HistogramChild | undefined> = [];
  /** [rcode] → plugin name → child */
  private readonly resp: Array<Map<string, CounterChild> | undefined> = [];
  private readonly doReq: CounterChild;
  private readonly reqSize: [HistogramChild, HistogramChild];
  private readonly respSize: [HistogramChild, HistogramChild];

  constructor(f: ServerMetricFamilies, server: string, zone: string) {
    this.f = f;
    this.server = server;
    this.zone = zone;
    this.doReq = f.doRequests.labels(server, zone, '');
    this.reqSize = [f.requestSize.labels(server, zone, '', 'udp'), f.requestSize.labels(server, zone, '', 'tcp')];
    this.respSize = [f.responseSize.labels(server, zone, '', 'udp'), f.responseSize.labels(server, zone, '', 'tcp')];
  }

  record(proto: 'udp' | 'tcp', family: 4 | 6, qtype: number, doBit: boolean, reqSize: number,
    rcode: number, plugin: string, respSize: number, seconds: number): void {
    const tcp = proto === 'tcp' ? 1 : 0;
    const ti = typeIndex[qtype]!;
    const row = this.req[tcp * 2 + (family === 6 ? 1 : 0)]!;
    let c = row[ti];
    if (!c) {
      c = this.f.requests.labels(this.server, this.zone, '', proto, family === 6 ? '2' : '1', typeNames[ti]!);
      row[ti] = c;
    }
    c.value++;
    if (doBit) this.doReq.value++;
    let h = this.dur[ti];
    if (!h) { h = this.f.duration.labels(this.server, this.zone, '', typeNames[ti]!); this.dur[ti] = h; }
    h.observe(seconds);
    this.reqSize[tcp]!.observe(reqSize);
    this.respSize[tcp]!.observe(respSize);
    let byPlugin = this.resp[rcode];
    if (!byPlugin) { byPlugin = new Map(); this.resp[rcode] = byPlugin; }
    let r = byPlugin.get(plugin);
    if (!r) { r = this.f.responses.labels(this.server, this.zone, '', rcodeName(rcode), plugin); byPlugin.set(plugin, r); }
    r.value++;
  }
}

/** A DNS listen address as the kernel-side metrics see it. */
export interface UdpListenAddress { label: string; host: string; port: number }

/**
 * coredns_dns_udp_receive_drops_total and coredns_dns_udp_receive_queue_bytes: the kernel's counts
 * for this process's UDP sockets on each DNS address (every worker's socket summed), read from
 * /proc/net/udp[6] when scraped. Registered where the whole process is seen: a single runtime, or
 * main with workers (a worker would count its siblings' sockets too).
 */
export function udpKernelMetrics(m: Metrics, addresses: () => UdpListenAddress[]): void {
  const totals = new Map<string, MonotonicTotal>();
  let last: { at: number; rows: Array<{ label: string; drops: number; rxQueue: number }> } | undefined;
  // Both metrics are collected in one scrape: read the kernel's table once for them.
  const read = () => {
    const now = performance.now();
    if (last && now - last.at < 100) return last.rows;
    const addrs = addresses();
    const t = readUdpTotals(addrs);
    last = { at: now, rows: addrs.map((a, i) => ({ label: a.label, drops: t[i]!.drops, rxQueue: t[i]!.rxQueue })) };
    return last.rows;
  };
  m.counter('coredns_dns_udp_receive_drops_total',
    'Datagrams the kernel dropped on the server\'s UDP sockets, mostly because the receive buffer was full (/proc/net/udp drops).',
    ['server'], function collect() {
      this.reset();
      for (const r of read()) {
        let t = totals.get(r.label);
        if (!t) { t = new MonotonicTotal(); totals.set(r.label, t); }
        this.inc({ server: r.label }, t.update(r.drops));
      }
    });
  m.gauge('coredns_dns_udp_receive_queue_bytes',
    'Bytes waiting in the server\'s UDP receive buffers when scraped (kernel accounting, /proc/net/udp rx_queue).',
    ['server'], function collect() {
      this.reset();
      for (const r of read()) this.set({ server: r.label }, r.rxQueue);
    });
}

/** coredns_dns_udp_{receive,send}_buffer_bytes: the sizes the kernel granted each listener's socket. */
export function udpBufferMetrics(m: Metrics, buffers: () => Array<{ label: string; receive: number; send: number }>): void {
  const each = (name: string, help: string, key: 'receive' | 'send') => m.gauge(name, help, ['server'], function collect() {
    this.reset();
    for (const b of buffers()) this.set({ server: b.label }, b[key]);
  }, 'max');
  each('coredns_dns_udp_receive_buffer_bytes', 'Receive buffer of the server\'s UDP socket as the kernel reports it (SO_RCVBUF, twice the granted request on Linux).', 'receive');
  each('coredns_dns_udp_send_buffer_bytes', 'Send buffer of the server\'s UDP socket as the kernel reports it (SO_SNDBUF, twice the granted request on Linux).', 'send');
}

/** clusterdns_reply_memo_*: how often replies were reused (src/server/memo.ts), per listen address. */
export function replyMemoMetrics(m: Metrics, rows: () => Array<{ label: string; counts: MemoCounts; entries: number; bytes: number }>): void {
  m.counter('clusterdns_reply_memo_lookups_total',
    'Queries looked up in the reply memo, by result: hit (answered from it), miss (nothing kept), stale (kept but no longer valid).',
    ['server', 'result'], function collect() {
      this.reset();
      for (const r of rows()) {
        this.inc({ server: r.label, result: 'hit' }, r.counts.hits);
        this.inc({ server: r.label, result: 'miss' }, r.counts.misses);
        this.inc({ server: r.label, result: 'stale' }, r.counts.stale);
      }
    });
  m.counter('clusterdns_reply_memo_inserts_total', 'Replies stored in the reply memo.', ['server'], function collect() {
    this.reset();
    for (const r of rows()) this.inc({ server: r.label }, r.counts.inserts);
  });
  m.gauge('clusterdns_reply_memo_entries', 'Replies held in the reply memo.', ['server'], function collect() {
    this.reset();
    for (const r of rows()) this.set({ server: r.label }, r.entries);
  });
  m.gauge('clusterdns_reply_memo_bytes', 'Bytes of replies held in the reply memo.', ['server'], function collect() {
    this.reset();
    for (const r of rows()) this.set({ server: r.label }, r.bytes);
  });
}
