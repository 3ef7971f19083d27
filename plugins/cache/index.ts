import type { Controller } from '../../src/corefile/controller.ts';
import type { Token } from '../../src/corefile/types.ts';
import { canonical } from '../../src/dns/name.ts';
import { type SetupEnv, definePlugin } from '../../src/plugin.ts';
import { Cache, type CacheConfig, type CacheOptions, defaultConfig } from './cache.ts';
import { CacheStats, cacheMetrics } from './metrics.ts';

export { Cache, defaultConfig, defaults, type CacheConfig, type CacheOptions, type TtlLimits } from './cache.ts';
export { CacheStats } from './metrics.ts';

/** RFC 2308 section 7.1: server failures may be cached for no more than five minutes. */
const MAX_SERVFAIL_MS = 5 * 60_000;
/** Go's strconv.Atoi accepts a sign. */
const INTEGER = /^[+-]?\d+$/;

function integer(c: Controller, t: Token): number {
  if (!INTEGER.test(t.text)) throw c.err(`invalid number '${t.text}'`, t);
  return Number(t.text);
}

/** `success|denial CAPACITY [TTL] [MINTTL]` */
function parseLimits(line: Controller, lim: CacheConfig['success']): void {
  const t = line.argTokens;
  if (t.length < 1 || t.length > 3) throw line.argErr();
  const capacity = integer(line, t[0]!);
  if (capacity <= 0) throw line.err(`cache capacity can not be zero or negative: ${capacity}`, t[0]);
  lim.capacity = capacity;
  if (t[1]) {
    const ttl = integer(line, t[1]);
    if (ttl <= 0) throw line.err(`cache TTL can not be zero or negative: ${ttl}`, t[1]);
    lim.maxTtl = ttl;
  }
  if (t[2]) {
    const min = integer(line, t[2]);
    if (min < 0) throw line.err(`cache min TTL can not be negative: ${min}`, t[2]);
    lim.minTtl = min;
  }
}

/** `prefetch AMOUNT [[DURATION] [PERCENTAGE%]]` */
function parsePrefetch(line: Controller, p: CacheConfig['prefetch']): void {
  const t = line.argTokens;
  if (t.length < 1 || t.length > 3) throw line.argErr();
  const amount = integer(line, t[0]!);
  if (amount < 0) throw line.err(`prefetch amount should be positive: ${amount}`, t[0]);
  p.amount = amount;
  if (t[1]) p.windowMs = line.duration(t[1]);
  if (t[2]) {
    const text = t[2].text;
    const last = text.at(-1) ?? '';
    if (last !== '%') throw line.err(`last character of percentage should be \`%\`, but is: '${last}'`, t[2]);
    const pct = integer(line, { ...t[2], text: text.slice(0, -1) });
    if (pct < 10 || pct > 90) throw line.err(`percentage should fall in range [10, 90]: ${pct}`, t[2]);
    p.percentage = pct;
  }
}

/**
 * cache: a front-end cache for the plugins after it in the chain (kubernetes, forward, ...), with
 * CoreDNS's syntax and defaults. One cache per server block.
 */
export const plugin = definePlugin<CacheConfig>({
  name: 'cache',
  parse(c) {
    let args = c.argTokens;
    let ttl: number | undefined;
    // The first argument is the TTL when it is a number, otherwise the first zone.
    if (args[0] && INTEGER.test(args[0].text)) {
      ttl = Number(args[0].text);
      if (ttl <= 0) throw c.err(`cache TTL can not be zero or negative: ${ttl}`, args[0]);
      args = args.slice(1);
    }
    const cfg = defaultConfig(args.length > 0 ? args.map((t) => canonical(t.text)) : c.serverZones);
    if (ttl !== undefined) {
      cfg.success.maxTtl = ttl;
      cfg.denial.maxTtl = ttl;
    }
    for (const line of c.lines()) {
      line.noBlock();
      const t = line.argTokens;
      switch (line.name) {
        case 'success':
          parseLimits(line, cfg.success);
          break;
        case 'denial':
          parseLimits(line, cfg.denial);
          break;
        case 'prefetch':
          parsePrefetch(line, cfg.prefetch);
          break;
        case 'serve_stale': {
          if (t.length > 2) throw line.argErr();
          cfg.serveStale = { ms: 3_600_000, verify: false };
          if (t[0]) {
            const ms = line.duration(t[0]);
            if (ms < 0) throw line.err('invalid negative duration for serve_stale', t[0]);
            cfg.serveStale.ms = ms;
          }
          if (t[1]) {
            const mode = t[1].text.toLowerCase();
            if (mode !== 'immediate' && mode !== 'verify') throw line.err(`invalid value for serve_stale refresh mode: ${mode}`, t[1]);
            cfg.serveStale.verify = mode === 'verify';
          }
          break;
        }
        case 'servfail': {
          if (t.length !== 1) throw line.argErr();
          const ms = line.duration(t[0]!);
          if (ms < 0) throw line.err('invalid negative ttl for servfail', t[0]);
          if (ms > MAX_SERVFAIL_MS) throw line.err('caching SERVFAIL responses over 5 minutes is not permitted', t[0]);
          cfg.servfailMs = ms;
          break;
        }
        case 'disable': {
          if (t.length < 1) throw line.argErr();
          const which = t[0]!.text;
          if (which !== 'success' && which !== 'denial') throw line.err('cache type for disable must be "success" or "denial"', t[0]);
          const zones = t.length > 1 ? t.slice(1).map((z) => canonical(z.text)) : ['.'];
          cfg.disable[which].push(...zones);
          break;
        }
        case 'keepttl':
          line.expectArgs(0);
          cfg.keepTtl = true;
          break;
        default:
          throw line.unknownProperty();
      }
    }
    return cfg;
  },
  setup(cfg, env) {
    return createCache(cfg, env);
  },
});

/** The handler setup makes, with its counters in the instance's registry; `now` lets tests drive time. */
export function createCache(cfg: CacheConfig, env: SetupEnv, opts: Omit<CacheOptions, 'stats'> = {}): Cache {
  const hub = cacheMetrics(env.metrics);
  const stats = new CacheStats(cfg.zones);
  hub.register(stats);
  env.onFinalShutdown(() => hub.unregister(stats));
  return new Cache(cfg, { ...opts, stats });
}
