// coredns_cache_* metrics. A cache hit must cost next to nothing, and a prom-client child's inc()
// builds a label string and validates the labels on every call (~165 ns here, more than a whole cache
// lookup). So the query path bumps plain numbers per listen address, and the numbers are moved into
// prom-client only when Prometheus scrapes (a `collect` hook), as deltas: counters stay monotonic when
// a reload replaces the cache and the old instance goes away.
import type { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../../src/metrics.ts';

/** Counts for one listen address ("dns://:53"): bumped on the query path, drained on scrape. */
export class ServerCounts {
  requests = 0;
  hitsSuccess = 0;
  hitsDenial = 0;
  misses = 0;
  prefetch = 0;
  drops = 0;
  servedStale = 0;
  evictionsSuccess = 0;
  evictionsDenial = 0;
}

type L3 = 'server' | 'zones' | 'view';
type L4 = 'server' | 'type' | 'zones' | 'view';

interface Families {
  entries: Gauge<L4>;
  requests: Counter<L3>;
  hits: Counter<L4>;
  misses: Counter<L3>;
  prefetch: Counter<L3>;
  drops: Counter<L3>;
  servedStale: Counter<L3>;
  evictions: Counter<L4>;
}

type CounterChild = ReturnType<Counter<string>['labels']>;

/** prom-client children of one (server, zones) pair, created at the first scrape that needs them. */
interface Children {
  requests: CounterChild;
  hitsSuccess: CounterChild;
  hitsDenial: CounterChild;
  misses: CounterChild;
  prefetch: CounterChild;
  drops: CounterChild;
  servedStale: CounterChild;
  evictionsSuccess: CounterChild;
  evictionsDenial: CounterChild;
}

/** The statistics of one cache instance. `sizes` reports [success, denial] entry counts. */
export class CacheStats {
  /** CoreDNS's `zones` label: the cache's zones joined by ",". */
  readonly zones: string;
  sizes: () => readonly [number, number] = () => [0, 0];
  private readonly byServer = new Map<string, ServerCounts>();
  private readonly children = new Map<string, Children>();
  private lastServer: string | undefined;
  private last: ServerCounts | undefined;

  constructor(zones: readonly string[]) {
    this.zones = zones.join(',');
  }

  /** The counts for a listen address; the common case (one address) is a string compare. */
  for(server: string): ServerCounts {
    if (server === this.lastServer) return this.last!;
    let c = this.byServer.get(server);
    if (c === undefined) { c = new ServerCounts(); this.byServer.set(server, c); }
    this.lastServer = server;
    this.last = c;
    return c;
  }

  /** Move pending counts into prom-client and set the entries gauge. */
  flush(f: Families): void {
    const [pos, neg] = this.sizes();
    for (const [server, c] of this.byServer) {
      let ch = this.children.get(server);
      if (ch === undefined) {
        const l3 = [server, this.zones, ''] as const;
        const l4 = (type: string) => f.hits.labels(server, type, this.zones, '');
        ch = {
          requests: f.requests.labels(...l3), hitsSuccess: l4('success'), hitsDenial: l4('denial'),
          misses: f.misses.labels(...l3), prefetch: f.prefetch.labels(...l3), drops: f.drops.labels(...l3),
          servedStale: f.servedStale.labels(...l3),
          evictionsSuccess: f.evictions.labels(server, 'success', this.zones, ''),
          evictionsDenial: f.evictions.labels(server, 'denial', this.zones, ''),
        };
        this.children.set(server, ch);
      }
      drain(c, ch, 'requests'); drain(c, ch, 'hitsSuccess'); drain(c, ch, 'hitsDenial');
      drain(c, ch, 'misses'); drain(c, ch, 'prefetch'); drain(c, ch, 'drops'); drain(c, ch, 'servedStale');
      drain(c, ch, 'evictionsSuccess'); drain(c, ch, 'evictionsDenial');
      f.entries.set({ server, type: 'success', zones: this.zones, view: '' }, pos);
      f.entries.set({ server, type: 'denial', zones: this.zones, view: '' }, neg);
    }
  }

  /** Forget the entries series of this cache (it is going away; counters keep their totals). */
  retire(f: Families): void {
    for (const server of this.byServer.keys()) {
      f.entries.remove({ server, type: 'success', zones: this.zones, view: '' });
      f.entries.remove({ server, type: 'denial', zones: this.zones, view: '' });
    }
  }
}

function drain(c: ServerCounts, ch: Children, k: keyof Children): void {
  const v = c[k];
  if (v > 0) { ch[k].inc(v); c[k] = 0; }
}

/** All caches of one metrics registry (all blocks, across reloads) and the families they feed. */
export class CacheMetrics {
  private readonly families: Families;
  private readonly live = new Set<CacheStats>();

  constructor(m: Metrics) {
    this.families = {
      entries: m.gauge('coredns_cache_entries', 'The number of elements in the cache.', ['server', 'type', 'zones', 'view']),
      requests: m.counter('coredns_cache_requests_total', 'The count of cache requests.', ['server', 'zones', 'view']),
      hits: m.counter('coredns_cache_hits_total', 'The count of cache hits.', ['server', 'type', 'zones', 'view']),
      misses: m.counter('coredns_cache_misses_total', 'The count of cache misses. Deprecated, derive misses from cache hits/requests counters.', ['server', 'zones', 'view']),
      prefetch: m.counter('coredns_cache_prefetch_total', 'The number of times the cache has prefetched a cached item.', ['server', 'zones', 'view']),
      drops: m.counter('coredns_cache_drops_total', 'The number responses that are not cached, because the reply is malformed.', ['server', 'zones', 'view']),
      servedStale: m.counter('coredns_cache_served_stale_total', 'The number of requests served from stale cache entries.', ['server', 'zones', 'view']),
      evictions: m.counter('coredns_cache_evictions_total', 'The count of cache evictions.', ['server', 'type', 'zones', 'view']),
    };
    // Metrics.counter/gauge are get-or-create without a collect parameter for counters; prom-client calls
    // a metric's `collect` property before reading it, so set it here. Every family flushes everything:
    // the first one read in a scrape does the work, the rest find nothing pending.
    const flush = () => { for (const s of this.live) s.flush(this.families); };
    for (const metric of Object.values(this.families)) (metric as unknown as { collect?: () => void }).collect = flush;
  }

  register(stats: CacheStats): void { this.live.add(stats); }

  /** Final flush of a cache that is shutting down. */
  unregister(stats: CacheStats): void {
    if (!this.live.delete(stats)) return;
    stats.flush(this.families);
    stats.retire(this.families);
  }
}

const hubs = new WeakMap<Metrics, CacheMetrics>();

/** The CacheMetrics of a registry, created on first use. */
export function cacheMetrics(m: Metrics): CacheMetrics {
  let h = hubs.get(m);
  if (h === undefined) { h = new CacheMetrics(m); hubs.set(m, h); }
  return h;
}
