import type { Controller } from '../../src/corefile/controller.ts';
import { definePlugin } from '../../src/plugin.ts';
import { ErrorLogger, type ConsolidateRule, type ErrorsConfig, type Level } from './errors.ts';

export type { ConsolidateRule, ErrorsConfig, Level } from './errors.ts';
export { ErrorLogger } from './errors.ts';

const levels: readonly Level[] = ['warning', 'error', 'info', 'debug'];
/** CoreDNS's limit on a consolidate expression. */
const MAX_REGEXP = 10_000;

function parseConsolidate(line: Controller): ConsolidateRule {
  const toks = line.argTokens;
  if (toks.length < 2 || toks.length > 4) throw line.argErr();
  line.noBlock();
  const periodMs = line.duration(toks[0]!);
  if (periodMs <= 0) throw line.err(`consolidate period must be positive, got '${toks[0]!.text}'`, toks[0]);
  const source = toks[1]!.text;
  if (source.length > MAX_REGEXP) throw line.err(`regexp longer than ${MAX_REGEXP} characters`, toks[1]);
  let pattern: RegExp;
  try {
    pattern = new RegExp(source);
  } catch (e) {
    throw line.err(`invalid regexp '${source}': ${(e as Error).message}`, toks[1]);
  }
  let level: Level = 'error';
  let showFirst = false;
  for (const t of toks.slice(2)) {
    if (t.text === 'show_first' && !showFirst) { showFirst = true; continue; }
    if (t === toks[2] && (levels as readonly string[]).includes(t.text)) { level = t.text as Level; continue; }
    throw line.err(`unknown log level argument in consolidate: ${t.text}`, t);
  }
  return { periodMs, source, pattern, level, showFirst };
}

/**
 * errors: log every query the chain failed on, as `RCODE NAME TYPE: message`; optionally fold
 * repeated errors into one line per period. Returns no handler: the server reports failures to it.
 */
export const plugin = definePlugin<ErrorsConfig>({
  name: 'errors',
  parse(c) {
    const args = c.expectArgs(0, 1);
    if (args.length === 1 && args[0] !== 'stdout') throw c.err(`invalid log file: ${args[0]}`, c.argTokens[0]);
    const cfg: ErrorsConfig = { stacktrace: false, consolidate: [] };
    for (const line of c.lines()) {
      switch (line.name) {
        case 'stacktrace':
          line.expectArgs(0);
          line.noBlock();
          cfg.stacktrace = true;
          break;
        case 'consolidate':
          cfg.consolidate.push(parseConsolidate(line));
          break;
        default:
          throw line.unknownProperty();
      }
    }
    return cfg;
  },
  setup(cfg, env) {
    const logger = new ErrorLogger(cfg, env.log);
    env.onError(logger.observe);
    env.onFinalShutdown(() => logger.stop());
    return undefined;
  },
});
