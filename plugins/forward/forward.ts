// The forward handler (CoreDNS plugin/forward/forward.go): pick upstreams by policy, skip the ones
// that are down, retry on errors within a total deadline, and hand back the upstream's reply as is
// (the server patches ID, question case and EDNS when it writes).
import { isSubdomain } from '../../src/dns/name.ts';
import { type Msg, Rcode } from '../../src/dns/types.ts';
import { DnsError, type Handler, type Next, type Reply } from '../../src/plugin.ts';
import type { Request } from '../../src/request.ts';
import type { ForwardConfig } from './config.ts';
import type { ForwardMetrics } from './metrics.ts';
import { makePolicy, type Policy, shuffled } from './policy.ts';
import { Proxy, type Transport } from './proxy.ts';

export interface ForwardDeps {
  metrics: ForwardMetrics;
  /** Is the next handler in the chain another forward? (`next RCODE` only hands over to one.) */
  nextIsForward?: boolean;
}

export class Forward implements Handler {
  readonly name = 'forward';
  readonly memo = true;
  readonly cfg: ForwardConfig;
  readonly proxies: readonly Proxy[];
  private readonly m: ForwardMetrics;
  private readonly policy: Policy;
  private readonly nextIsForward: boolean;
  private readonly failover: ReadonlySet<number>;
  private readonly nextRcodes: ReadonlySet<number>;
  /** One error object for every rejection: a flood beyond the limit allocates nothing, not even a stack. */
  private readonly limitError: DnsError;
  private concurrent = 0;

  constructor(cfg: ForwardConfig, deps: ForwardDeps) {
    this.cfg = cfg;
    this.m = deps.metrics;
    this.nextIsForward = deps.nextIsForward ?? false;
    this.policy = makePolicy(cfg.policy);
    this.failover = new Set(cfg.failover);
    this.nextRcodes = new Set(cfg.next);
    this.limitError = new DnsError(Rcode.REFUSED, 'forward', `concurrent queries exceeded maximum ${cfg.maxConcurrent}`);
    this.proxies = cfg.upstreams.map((upstream) => new Proxy({
      upstream,
      expireMs: cfg.expireMs,
      maxIdleConns: cfg.maxIdleConns,
      healthCheck: { ...cfg.healthCheck, timeoutMs: cfg.timeouts.healthCheckMs, tcp: cfg.forceTcp },
      metrics: deps.metrics,
    }));
  }

  /** Queries being forwarded right now. */
  get inFlight(): number { return this.concurrent; }

  /** Does this forward handle `name` (canonical)? Under FROM and not under an `except` name. */
  match(name: string): boolean {
    if (!isSubdomain(name, this.cfg.from)) return false;
    if (name === this.cfg.from) return true;
    for (const ex of this.cfg.except) if (isSubdomain(name, ex)) return false;
    return true;
  }

  serveDNS(req: Request, next: Next): Reply {
    if (!this.match(req.name)) return next(req);
    req.noMemo(); // an upstream's answer: the cache (in front of us) decides how long it may be reused
    const max = this.cfg.maxConcurrent;
    if (max > 0 && this.concurrent >= max) {
      this.m.maxConcurrentRejects.inc();
      throw this.limitError;
    }
    this.concurrent++;
    return this.forward(req, next);
  }

  stop(): void {
    for (const p of this.proxies) p.stop();
  }

  private async forward(req: Request, next: Next): Promise<Msg> {
    try {
      return await this.attempts(req, next);
    } finally {
      this.concurrent--;
    }
  }

  private async attempts(req: Request, next: Next): Promise<Msg> {
    const { cfg, proxies } = this;
    const t = cfg.timeouts;
    const deadline = performance.now() + t.totalMs;
    const list = this.policy.list(proxies);
    // CoreDNS retries failed upstreams until its 5 s deadline; upstreams that fail fast (refused ports)
    // would make that a busy loop, so a query also stops after two failed rounds over the list.
    const maxFailed = cfg.maxConnectAttempts > 0 ? cfg.maxConnectAttempts : 2 * proxies.length;
    let failed = 0;
    let i = 0;
    let skipped = 0; // down upstreams passed over (and failover answers) in this round
    let failedOver = 0; // failover answers in this query: every upstream gets one chance
    let lastErr: unknown;
    let lastFailover: Msg | undefined;

    while (performance.now() < deadline) {
      if (i >= list.length) { i = 0; skipped = 0; }
      let proxy = list[i++]!;
      if (proxy.down(cfg.maxFails)) {
        skipped++;
        if (skipped < proxies.length) continue;
        // Every upstream is down: assume health checking itself is broken and try one at random.
        this.m.healthcheckBroken.inc();
        if (cfg.failfastAllUnhealthyUpstreams) break;
        proxy = shuffled(proxies)[0]!;
      }
      req.setMeta('forward/upstream', proxy.addr);

      let proto: Transport = cfg.forceTcp ? 'tcp' : cfg.preferUdp ? 'udp' : req.proto;
      let ret: Msg;
      try {
        const budget = () => Math.max(1, Math.min(t.attemptMs, deadline - performance.now()));
        ret = await proxy.exchange(req, proto, budget());
        // prefer_udp: a truncated UDP answer is asked again over TCP (a UDP client gets the TC reply
        // and retries over TCP itself, as with CoreDNS).
        if (ret.flags.tc && proto === 'udp' && cfg.preferUdp && !cfg.forceTcp && performance.now() < deadline) {
          proto = 'tcp';
          ret = await proxy.exchange(req, proto, budget());
        }
      } catch (e) {
        lastErr = e;
        // Kick off the probe: repeated failed health checks (not failed queries) mark an upstream down.
        if (cfg.maxFails !== 0) proxy.healthcheck();
        if (++failed >= maxFailed) break;
        if (skipped < proxies.length) continue;
        break;
      }

      if (this.failover.has(ret.rcode)) {
        lastFailover = ret;
        if (++failedOver < proxies.length && skipped < proxies.length) { skipped++; continue; }
        return ret;
      }
      if (this.nextRcodes.has(ret.rcode) && this.nextIsForward) return next(req);
      return ret;
    }
    if (lastFailover) return lastFailover;
    if (lastErr !== undefined) throw new DnsError(Rcode.SERVFAIL, 'forward', lastErr);
    throw new DnsError(Rcode.SERVFAIL, 'forward', 'no healthy proxies');
  }
}
