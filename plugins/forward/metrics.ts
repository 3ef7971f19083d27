// CoreDNS's forward metrics (plugin/forward/metrics.go) and the shared proxy ones (plugin/pkg/proxy/
// metrics.go), on the instance registry. Names, help texts and labels as CoreDNS exports them.
import type { Counter, Histogram } from 'prom-client';
import { durationBuckets, type Metrics } from '../../src/metrics.ts';
import { rcodeName } from '../../src/dns/types.ts';

export interface ForwardMetrics {
  requestDuration: Histogram<'proxy_name' | 'to' | 'rcode'>;
  healthcheckFailures: Counter<'proxy_name' | 'to'>;
  connCacheHits: Counter<'proxy_name' | 'to' | 'proto'>;
  connCacheMisses: Counter<'proxy_name' | 'to' | 'proto'>;
  healthcheckBroken: Counter;
  maxConcurrentRejects: Counter;
}

export function forwardMetrics(m: Metrics): ForwardMetrics {
  return {
    requestDuration: m.histogram('coredns_proxy_request_duration_seconds', 'Histogram of the time each request took.',
      ['proxy_name', 'to', 'rcode'], durationBuckets),
    healthcheckFailures: m.counter('coredns_proxy_healthcheck_failures_total', 'Counter of the number of failed healthchecks.',
      ['proxy_name', 'to']),
    connCacheHits: m.counter('coredns_proxy_conn_cache_hits_total', 'Counter of connection cache hits per upstream and protocol.',
      ['proxy_name', 'to', 'proto']),
    connCacheMisses: m.counter('coredns_proxy_conn_cache_misses_total', 'Counter of connection cache misses per upstream and protocol.',
      ['proxy_name', 'to', 'proto']),
    healthcheckBroken: m.counter('coredns_forward_healthcheck_broken_total', 'Counter of the number of complete failures of the healthchecks.'),
    maxConcurrentRejects: m.counter('coredns_forward_max_concurrent_rejects_total',
      'Counter of the number of queries rejected because the concurrent queries were at maximum.'),
  };
}

/** The rcode label: miekg/dns's name, or the number for codes it has no name for. */
export function rcodeLabel(rcode: number): string {
  const n = rcodeName(rcode);
  return n.startsWith('RCODE') ? String(rcode) : n;
}
