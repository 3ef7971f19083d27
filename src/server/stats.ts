// coredns_dns_* metrics, recorded by the server after each write. Label children are resolved once and
// kept in small arrays/maps, so a query costs a few lookups and no string building.
import type { Counter, Histogram } from 'prom-client';
import { type Metrics, durationBuckets, sizeBuckets } from '../metrics.ts';
import { rcodeName } from '../dns/types.ts';

// CoreDNS labels these query types by name and everything else as "other".
const namedTypes: Record<number, string> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 35: 'NAPTR',
  43: 'DS', 46: 'RRSIG', 47: 'NSEC', 48: 'DNSKEY', 50: 'NSEC3', 64: 'SVCB', 65: 'HTTPS', 251: 'IXFR', 252: 'AXFR', 255: 'ANY',
};
export function typeLabel(t: number): string { return namedTypes[t] ?? 'other'; }

type CounterChild = ReturnType<Counter<string>['labels']>;
type HistogramChild = ReturnType<Histogram<string>['labels']>;

export interface ServerMetricFamilies {
  requests: Counter<'server' | 'zone' | 'view' | 'proto' | 'family' | 'type'>;
  doRequests: Counter<'server' | 'zone' | 'view'>;
  responses: Counter<'server' | 'zone' | 'view' | 'rcode' | 'plugin'>;
  duration: Histogram<'server' | 'zone' | 'view' | 'type'>;
  requestSize: Histogram<'server' | 'zone' | 'view' | 'proto'>;
  responseSize: Histogram<'server' | 'zone' | 'view' | 'proto'>;
  panics: Counter;
}

export function serverMetricFamilies(m: Metrics): ServerMetricFamilies {
  return {
    requests: m.counter('coredns_dns_requests_total', 'Counter of DNS requests made per zone, protocol and family.', ['server', 'zone', 'view', 'proto', 'family', 'type']),
    doRequests: m.counter('coredns_dns_do_requests_total', 'Counter of DNS requests with DO bit set per zone.', ['server', 'zone', 'view']),
    responses: m.counter('coredns_dns_responses_total', 'Counter of response status codes.', ['server', 'zone', 'view', 'rcode', 'plugin']),
    duration: m.histogram('coredns_dns_request_duration_seconds', 'Histogram of the time (in seconds) each request took per zone.', ['server', 'zone', 'view', 'type'], durationBuckets),
    requestSize: m.histogram('coredns_dns_request_size_bytes', 'Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.', ['server', 'zone', 'view', 'proto'], sizeBuckets),
    responseSize: m.histogram('coredns_dns_response_size_bytes', 'Size of the returned response in bytes.', ['server', 'zone', 'view', 'proto'], sizeBuckets),
    panics: m.counter('coredns_panics_total', 'A metrics that counts the number of panics.'),
  };
}

/** The children for one (server, zone) pair: one per listener and block zone, created at setup. */
export class ZoneStats {
  private readonly f: ServerMetricFamilies;
  private readonly server: string;
  private readonly zone: string;
  private readonly req = new Map<number, CounterChild>();
  private readonly dur = new Map<number, HistogramChild>();
  private readonly resp = new Map<number, Map<string, CounterChild>>();
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
    // Key: type (16 bits) | family bit | proto bit.
    const key = (qtype << 2) | (family === 6 ? 2 : 0) | tcp;
    let c = this.req.get(key);
    if (!c) { c = this.f.requests.labels(this.server, this.zone, '', proto, family === 6 ? '2' : '1', typeLabel(qtype)); this.req.set(key, c); }
    c.inc();
    if (doBit) this.doReq.inc();
    let h = this.dur.get(qtype);
    if (!h) { h = this.f.duration.labels(this.server, this.zone, '', typeLabel(qtype)); this.dur.set(qtype, h); }
    h.observe(seconds);
    this.reqSize[tcp]!.observe(reqSize);
    this.respSize[tcp]!.observe(respSize);
    let byPlugin = this.resp.get(rcode);
    if (!byPlugin) { byPlugin = new Map(); this.resp.set(rcode, byPlugin); }
    let r = byPlugin.get(plugin);
    if (!r) { r = this.f.responses.labels(this.server, this.zone, '', rcodeName(rcode), plugin); byPlugin.set(plugin, r); }
    r.inc();
  }
}
