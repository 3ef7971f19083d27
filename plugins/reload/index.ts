import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Gauge } from 'prom-client';
import { definePlugin, type InstanceApi } from '../../src/plugin.ts';

export interface ReloadConfig {
  /** How often to check the Corefile, ms (default 30 s; at least 2 s from a Corefile). */
  intervalMs: number;
  /** Spread of the check period, ms: the period is INTERVAL ± JITTER/2, chosen once per setup. */
  jitterMs: number;
}

const MIN_INTERVAL_MS = 2000;
const MIN_JITTER_MS = 1000;
const DEFAULT_INTERVAL_MS = 30_000;
const DEFAULT_JITTER_MS = 15_000;

/**
 * SHA-512 over the Corefile and every file it imports, in hex. For a Corefile without imports this is
 * the hash of the file's bytes (what `sha512sum Corefile` prints); each import adds its path, length
 * and bytes, so editing an imported file changes the digest too.
 */
export function corefileDigest(contents: ReadonlyArray<{ file: string; data: Uint8Array }>): string {
  const h = createHash('sha512');
  contents.forEach(({ file, data }, i) => {
    if (i > 0) h.update(`\0${file}\0${data.length}\0`);
    h.update(data);
  });
  return h.digest('hex');
}

async function readDigest(files: readonly string[]): Promise<string> {
  const contents = await Promise.all(files.map(async (file) => ({ file, data: await readFile(file) })));
  return corefileDigest(contents);
}

function readDigestSync(files: readonly string[]): string {
  return corefileDigest(files.map((file) => ({ file, data: readFileSync(file) })));
}

/** The check period: INTERVAL plus a uniform offset in [-JITTER/2, JITTER/2), as CoreDNS. */
export function checkPeriod(cfg: ReloadConfig, random: () => number = Math.random): number {
  const jitter = Math.min(cfg.jitterMs, cfg.intervalMs / 2);
  return Math.max(1, Math.round(cfg.intervalMs + (random() - 0.5) * jitter));
}

// One checker per running configuration, however many server blocks list `reload` (the first wins).
const checkers = new WeakMap<InstanceApi, true>();
// Which checker's hash coredns_reload_version_info shows (per metrics registry, i.e. per runtime).
const versionOwner = new WeakMap<Gauge, object>();

/**
 * reload: check the Corefile (and its imports) every INTERVAL ± JITTER/2 and, when the contents
 * changed, reload the configuration. A failed reload keeps the running one; the same contents are not
 * tried again until they change once more.
 */
export const plugin = definePlugin<ReloadConfig>({
  name: 'reload',
  // Main reloads itself and its workers together.
  placement: 'main',
  parse(c) {
    const toks = c.argTokens;
    if (toks.length > 2) throw c.argErr();
    c.noBlock();
    const intervalMs = toks[0] ? c.duration(toks[0]) : DEFAULT_INTERVAL_MS;
    if (intervalMs < MIN_INTERVAL_MS) throw c.err('interval value must be greater or equal to 2s', toks[0]);
    let jitterMs = toks[1] ? c.duration(toks[1]) : DEFAULT_JITTER_MS;
    if (jitterMs < MIN_JITTER_MS) throw c.err('jitter value must be greater or equal to 1s', toks[1]);
    if (jitterMs > intervalMs / 2) jitterMs = intervalMs / 2;
    return { intervalMs, jitterMs };
  },
  setup(cfg, env) {
    if (checkers.has(env.instance)) return undefined;
    checkers.set(env.instance, true);

    const failed = env.metrics.counter('coredns_reload_failed_total', 'Counter of the number of failed reload attempts.');
    const version = env.metrics.gauge('coredns_reload_version_info',
      "A metric with a constant '1' value labeled by hash, and value which type of hash generated.", ['hash', 'value']);
    const files = env.corefile.files.length > 0 ? env.corefile.files : [env.corefile.file];
    const period = checkPeriod(cfg);
    const me = {};

    // The digest of what this configuration was built from (read as close to the parse as we get).
    let running: string | null = null;
    try {
      running = readDigestSync(files);
    } catch (e) {
      env.log.warn(`Corefile load failed: ${(e as Error).message}`);
    }
    /** Last digest acted on: the running one, or a broken one we already failed to load. */
    let seen = running;
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;

    const showVersion = (hash: string) => {
      version.reset();
      version.set({ hash: 'sha512', value: hash }, 1);
      versionOwner.set(version, me);
    };

    const check = async () => {
      let digest: string;
      try {
        digest = await readDigest(files);
      } catch (e) {
        env.log.warn(`Corefile load failed: ${(e as Error).message}`);
        return;
      }
      if (seen === null) { // unreadable at startup: take what is there now as the baseline
        seen = running = digest;
        env.log.info(`Running configuration SHA512 = ${digest}`);
        showVersion(digest);
        return;
      }
      if (digest === seen || stopped || env.instance.draining) return;
      seen = digest;
      try {
        await env.instance.reload();
        running = digest;
      } catch (e) {
        env.log.error(`Corefile changed but reload failed: ${e instanceof Error ? e.message : String(e)}`);
        failed.inc();
      }
    };
    const schedule = () => {
      if (stopped) return;
      timer = setTimeout(() => {
        check().catch((e: unknown) => env.log.error(`reload check failed: ${String(e)}`)).finally(schedule);
      }, period).unref();
    };

    env.onStartup(() => {
      if (running !== null) {
        env.log.info(`Running configuration SHA512 = ${running}`);
        showVersion(running);
      }
      schedule();
    });
    // After a successful reload the new configuration's reload plugin takes over; this one stops.
    env.onFinalShutdown(() => {
      stopped = true;
      clearTimeout(timer);
      if (versionOwner.get(version) === me) {
        version.reset();
        versionOwner.delete(version);
      }
    });
    return undefined;
  },
});
