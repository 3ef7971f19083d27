import type { Logger } from '../../src/log.ts';
import type { InstanceApi } from '../../src/plugin.ts';
import type { Route } from '../../src/server/http.ts';

export type Monitor = 'until-ready' | 'continuously';

export interface ReadyStatus {
  ready: boolean;
  /** Sorted names of the plugins not ready yet (empty when ready or draining). */
  notReady: string[];
  draining: boolean;
}

/**
 * Readiness of the whole instance: every registered check, polled when a probe comes in. With
 * `until-ready` (the default, as in CoreDNS) a plugin that was ready once is not asked again.
 */
export class Readiness {
  private readonly checks: () => ReadonlyMap<string, () => boolean>;
  private readonly instance: InstanceApi;
  private readonly monitor: Monitor;
  private readonly confirmed = new Set<string>();

  constructor(checks: () => ReadonlyMap<string, () => boolean>, instance: InstanceApi, monitor: Monitor) {
    this.checks = checks;
    this.instance = instance;
    this.monitor = monitor;
  }

  status(): ReadyStatus {
    if (this.instance.draining) return { ready: false, notReady: [], draining: true };
    const notReady: string[] = [];
    for (const [name, isReady] of this.checks()) {
      if (this.confirmed.has(name)) continue;
      let ok: boolean;
      try { ok = isReady(); } catch { ok = false; }
      if (!ok) notReady.push(name);
      else if (this.monitor === 'until-ready') this.confirmed.add(name);
    }
    notReady.sort();
    return { ready: notReady.length === 0, notReady, draining: false };
  }
}

const textPlain = { 'content-type': 'text/plain; charset=utf-8' };

/** GET /ready: 200 "OK"; 503 "Shutting down" in lameduck; 503 and "a,b" naming plugins not ready. */
export function readyRoute(readiness: Readiness, log: Logger): Route {
  return (_req, res) => {
    const s = readiness.status();
    if (s.draining) { res.writeHead(503, textPlain).end('Shutting down'); return; }
    if (s.ready) { res.writeHead(200, textPlain).end('OK'); return; }
    const list = s.notReady.join(',');
    log.info(`Plugins not ready: ${JSON.stringify(list)}`);
    res.writeHead(503, textPlain).end(list);
  };
}
