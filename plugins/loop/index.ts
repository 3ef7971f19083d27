import { Rcode, Type } from '../../src/dns/types.ts';
import { DnsError, definePlugin, type Handler, type Next, type Reply } from '../../src/plugin.ts';
import type { Request } from '../../src/request.ts';

export interface LoopConfig {
  /** The zone of the probe name: the server block's first zone. */
  zone: string;
  /** How the process ends on a loop (default process.exit). Tests pass their own. */
  exit?: (code: number) => void;
  /** How long to keep trying to get the probe through, ms (default 30 s, as CoreDNS). */
  budgetMs?: number;
  /** Pause between failed probes, ms (default 1 s). */
  retryMs?: number;
  /** How long to keep counting after the probe got an answer, ms (default 2 s). */
  graceMs?: number;
}

const defaults = { budgetMs: 30_000, retryMs: 1000, graceMs: 2000 };

/** A random non-negative 63-bit integer in decimal, like Go's rand.Int(). */
function randomLabel(): string {
  const v = crypto.getRandomValues(new BigUint64Array(1))[0]!;
  return (v >> 1n).toString();
}

/** `<random>.<random>.<zone>` */
export function probeName(zone: string): string {
  return `${randomLabel()}.${randomLabel()}.${zone === '.' ? '' : zone}`;
}

/**
 * Counts how often the probe name passes through the chain; a third sighting means our own query
 * came back to us through some forwarder: a loop that would eat the process, so we stop it. Every
 * other query costs one type comparison.
 */
export class LoopHandler implements Handler {
  readonly name = 'loop';
  readonly memo = true;
  readonly qname: string;
  private readonly zone: string;
  private readonly listen: string;
  private readonly fatal: (line: string) => void;
  private seen = 0;
  private off = false;

  constructor(zone: string, qname: string, listen: string, fatal: (line: string) => void) {
    this.zone = zone;
    this.qname = qname;
    this.listen = listen;
    this.fatal = fatal;
  }

  get disabled(): boolean { return this.off; }
  get count(): number { return this.seen; }
  disable(): void { this.off = true; }
  reset(): void { this.seen = 0; }

  serveDNS(req: Request, next: Next): Reply {
    if (req.qtype !== Type.HINFO || this.off) return next(req);
    if (req.name === this.qname) req.noMemo(); // every sighting of the probe must be counted
    if (req.name === this.qname && ++this.seen > 2) {
      this.off = true;
      const remote = req.remoteAddress.includes(':') ? `[${req.remoteAddress}]:${req.remotePort}` : `${req.remoteAddress}:${req.remotePort}`;
      this.fatal(`Loop (${remote} -> ${this.listen}) detected for zone "${this.zone}", ` +
        `see https://coredns.io/plugins/loop#troubleshooting. Query: "HINFO ${this.qname}"`);
      // Only reached when exit was replaced (tests): end this round of the loop.
      throw new DnsError(Rcode.SERVFAIL, 'loop', 'forwarding loop detected');
    }
    return next(req);
  }
}

/**
 * loop: at startup, send a random HINFO query through this block's chain; if it comes back more
 * than twice, a forwarder is sending our queries back to us: log FATAL and exit.
 */
export const plugin = definePlugin<LoopConfig>({
  name: 'loop',
  parse(c) {
    c.expectArgs(0);
    c.noBlock();
    return { zone: c.serverZones[0] ?? '.' };
  },
  setup(cfg, env) {
    const budgetMs = cfg.budgetMs ?? defaults.budgetMs;
    const retryMs = cfg.retryMs ?? defaults.retryMs;
    const graceMs = cfg.graceMs ?? defaults.graceMs;
    const exit = cfg.exit ?? ((code: number) => process.exit(code));
    const listen = (env.block.servers[0] ?? 'dns://:53').replace(/^dns:\/\//, '');
    const h = new LoopHandler(cfg.zone, probeName(cfg.zone), listen, (line) => {
      env.log.raw(`[FATAL] plugin/loop: ${line}`);
      exit(1);
    });

    const timers = new Set<NodeJS.Timeout>();
    let stopped = false;
    const later = (f: () => void, ms: number) => {
      const t = setTimeout(() => { timers.delete(t); f(); }, ms).unref();
      timers.add(t);
    };
    let deadline = 0;
    const attempt = async () => {
      if (stopped || h.disabled) return;
      try {
        await env.instance.query(env.block.index, h.qname, Type.HINFO);
      } catch {
        // No answer (an upstream not up yet, or the chain failed): try again while the budget lasts.
        h.reset();
        if (!stopped && !h.disabled && Date.now() + retryMs < deadline) later(() => void attempt(), retryMs);
        else h.disable();
        return;
      }
      // It got through once; a loop would have shown by now, but keep counting a little longer.
      later(() => h.disable(), graceMs);
    };
    env.onStartup(() => {
      deadline = Date.now() + budgetMs;
      // Not awaited: startup must not wait for the probe (listeners open after the startup hooks).
      later(() => void attempt(), 0);
      later(() => h.disable(), budgetMs + graceMs);
    });
    env.onFinalShutdown(() => {
      stopped = true;
      h.disable();
      for (const t of timers) clearTimeout(t);
      timers.clear();
    });
    return h;
  },
});
