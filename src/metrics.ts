import {
  AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric, type MetricObjectWithValues, type MetricValue,
} from 'prom-client';
import { FastCounter, FastHistogram } from './fastmetrics.ts';

/**
 * The instance's Prometheus registry with get-or-create constructors: two server blocks (or a reload)
 * asking for the same metric get the same object instead of a "metric already registered" error.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly byName = new Map<string, Counter | Gauge | Histogram>();
  private readonly fast = new Map<string, FastCounter | FastHistogram>();
  private defaultsOn = false;
  private readonly remotes: Array<() => Promise<RemoteMetrics[]>> = [];

  /** `collect` runs at each scrape (for counts kept elsewhere, such as the kernel's). */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = [],
    collect?: (this: Counter<L>) => void | Promise<void>): Counter<L> {
    return this.getOrCreate(name, () => new Counter({
      name, help, labelNames, registers: [this.registry], ...(collect ? { collect } : {}),
    })) as Counter<L>;
  }

  /**
   * `aggregator`: how `text()` combines this gauge across registries (workers); the default sums,
   * 'max' suits a value every worker reports alike (a socket buffer size).
   */
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = [],
    collect?: (this: Gauge<L>) => void | Promise<void>, aggregator?: 'sum' | 'max'): Gauge<L> {
    return this.getOrCreate(name, () => new Gauge({
      name, help, labelNames, registers: [this.registry], ...(collect ? { collect } : {}), ...(aggregator ? { aggregator } : {}),
    })) as Gauge<L>;
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): Histogram<L> {
    return this.getOrCreate(name, () => new Histogram({ name, help, labelNames, buckets, registers: [this.registry] })) as Histogram<L>;
  }

  /** A hot-path counter: children are plain numbers (see src/fastmetrics.ts). */
  fastCounter(name: string, help: string, labelNames: readonly string[] = []): FastCounter {
    let m = this.fast.get(name);
    if (!m) {
      m = new FastCounter(name, help, labelNames);
      this.registry.registerMetric(m as unknown as Metric);
      this.fast.set(name, m);
    }
    if (!(m instanceof FastCounter)) throw new Error(`metric ${name} is not a counter`);
    return m;
  }

  /** A hot-path histogram: children are plain arrays (see src/fastmetrics.ts). */
  fastHistogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): FastHistogram {
    let m = this.fast.get(name);
    if (!m) {
      m = new FastHistogram(name, help, labelNames, buckets);
      this.registry.registerMetric(m as unknown as Metric);
      this.fast.set(name, m);
    }
    if (!(m instanceof FastHistogram)) throw new Error(`metric ${name} is not a histogram`);
    return m;
  }

  /** Process and Node.js runtime metrics (process_*, nodejs_*), once per registry. */
  enableDefaults(): void {
    if (this.defaultsOn) return;
    this.defaultsOn = true;
    // The event-loop lag histogram samples with a libuv timer; prom-client's default 10 ms wakes an idle
    // DNS server 100 times a second (and sits in its latency tail). 100 ms still shows any stall.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
  }

  /**
   * Also render other registries (workers' metrics, as `getMetricsAsJSON()` gives them): `text()` then
   * sums series with the same name and labels across this registry and theirs.
   */
  addRemote(collect: () => Promise<RemoteMetrics[]>): void { this.remotes.push(collect); }

  /**
   * The exposition text. Rendered one metric per turn of the event loop: the whole scrape (~40
   * metrics, ~38 KB) took 4-9 ms of the DNS loop in one go, and queries arriving meanwhile waited
   * that long (docs/performance.md, "What stalls the loop at 10k QPS"); between metrics they are
   * answered now. Same text as prom-client's `metrics()`, but not one instant's snapshot (nor is
   * Go's client's, which CoreDNS uses).
   */
  async text(): Promise<string> {
    if (this.remotes.length === 0) return renderByTurns(this.registry);
    const own = await byTurns(this.registry, async (name) => await this.registry.getSingleMetric(name)!.get() as unknown as RemoteMetrics[number]);
    const parts: RemoteMetrics[] = [own];
    for (const r of await Promise.all(this.remotes.map((f) => f()))) parts.push(...r);
    return renderByTurns(AggregatorRegistry.aggregate(parts as unknown as MetricObjectWithValues<MetricValue<string>>[][]));
  }
  get contentType(): string { return this.registry.contentType; }

  private getOrCreate(name: string, make: () => Counter | Gauge | Histogram): Counter | Gauge | Histogram {
    let m = this.byName.get(name);
    if (!m) { m = make(); this.byName.set(name, m); }
    return m;
  }
}

/** `f` for each metric of the registry, one per turn of the event loop. */
async function byTurns<T>(registry: Registry, f: (name: string) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (const { name } of registry.getMetricsAsArray()) {
    out.push(await f(name));
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return out;
}

/** `registry.metrics()` (Prometheus text format), yielding to the event loop after each metric. */
async function renderByTurns(registry: Registry): Promise<string> {
  return `${(await byTurns(registry, (name) => registry.getSingleMetricAsString(name))).join('\n\n')}\n`;
}

/** One registry's metrics as JSON (`Registry.getMetricsAsJSON()`). */
export type RemoteMetrics = Array<{ name: string; help: string; type: string; aggregator: string; values: MetricValue<string>[] }>;

/** CoreDNS's duration buckets: exponential from 0.25 ms. */
export const durationBuckets = [0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192];
/** CoreDNS's size buckets (bytes). */
export const sizeBuckets = [0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000];
