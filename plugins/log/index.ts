import { canonical, isSubdomain } from '../../src/dns/name.ts';
import type { Msg } from '../../src/dns/types.ts';
import type { Logger } from '../../src/log.ts';
import { definePlugin, type InstanceApi, type SetupEnv } from '../../src/plugin.ts';
import type { Request } from '../../src/request.ts';
import { classify, type ResponseClass } from './classify.ts';
import { COMBINED_FORMAT, COMMON_FORMAT, compileJson, compileText, type Formatter } from './format.ts';

export { classify, type ResponseClass } from './classify.ts';
export { COMBINED_FORMAT, COMMON_FORMAT, compileJson, compileText } from './format.ts';

export type LogClass = ResponseClass | 'all';

export interface LogConfig {
  /** Canonical zones whose queries this directive logs. */
  names: string[];
  /** The format with placeholders ({common} and {combined} already expanded). */
  format: string;
  /** Response classes to log; contains 'all' when nothing narrower was asked for. */
  classes: Set<LogClass>;
  /** Also log responses slower than this, whatever their class (0: off). */
  minDurationMs: number;
  /** One JSON object per line (keys: the format's placeholders) instead of text. */
  json: boolean;
}

const classNames: readonly LogClass[] = ['all', 'success', 'denial', 'error'];
/** `minDuration` without a value. */
const DEFAULT_MIN_DURATION_MS = 100;

function expandFormat(arg: string): string {
  if (arg === '{common}') return COMMON_FORMAT;
  if (arg === '{combined}') return COMBINED_FORMAT;
  return arg;
}

/** One compiled directive. */
interface Rule {
  names: string[];
  all: boolean;
  classes: Set<LogClass>;
  minDurationMs: number;
  format: Formatter;
  /** Text lines get CoreDNS's "[INFO] " level prefix; JSON lines are written bare for log shippers. */
  prefix: string;
}

function compileRule(cfg: LogConfig): Rule {
  return {
    names: cfg.names,
    all: cfg.classes.has('all'),
    classes: cfg.classes,
    minDurationMs: cfg.minDurationMs,
    format: cfg.json ? compileJson(cfg.format) : compileText(cfg.format),
    prefix: cfg.json ? '' : '[INFO] ',
  };
}

function covers(zones: string[], name: string): boolean {
  for (const z of zones) if (isSubdomain(name, z)) return true;
  return false;
}

/** The first rule whose names cover the query decides, as in CoreDNS; later rules are not consulted. */
function logResponse(rules: Rule[], log: Logger, req: Request, reply: Msg, size: number, ms: number): void {
  const name = req.name;
  for (const rule of rules) {
    if (!covers(rule.names, name)) continue;
    if (rule.all || rule.classes.has(classify(reply)) || (rule.minDurationMs > 0 && ms > rule.minDurationMs)) {
      log.raw(rule.prefix + rule.format(req, reply, size, ms));
    }
    return;
  }
}

// Several `log` directives in one block share one observer so a query is logged at most once.
// Keyed by instance (a reload brings a new one) and block index.
const blockRules = new WeakMap<InstanceApi, Map<number, Rule[]>>();

function rulesFor(env: SetupEnv): { rules: Rule[]; fresh: boolean } {
  let byBlock = blockRules.get(env.instance);
  if (!byBlock) { byBlock = new Map(); blockRules.set(env.instance, byBlock); }
  let rules = byBlock.get(env.block.index);
  const fresh = rules === undefined;
  if (!rules) { rules = []; byBlock.set(env.block.index, rules); }
  return { rules, fresh };
}

/**
 * log: one line per answered query, CoreDNS's Common Log Format by default. Works as a response
 * observer: the server calls it after writing the reply, with the bytes written and the time taken.
 */
export const plugin = definePlugin<LogConfig>({
  name: 'log',
  multiple: true,
  parse(c) {
    let args = c.args;
    let format = COMMON_FORMAT;
    // The last argument is a format when it holds a placeholder; everything before it is a name.
    if (args.length > 0 && args.at(-1)!.includes('{')) {
      format = expandFormat(args.at(-1)!);
      args = args.slice(0, -1);
    }
    const names = args.length > 0 ? args.map((a) => canonical(a)) : ['.'];
    const classes = new Set<LogClass>();
    let minDurationMs = 0;
    let json = false;
    for (const line of c.lines()) {
      line.noBlock();
      switch (line.name) {
        case 'class': {
          if (line.argTokens.length === 0) throw line.argErr();
          for (const t of line.argTokens) {
            if (!(classNames as readonly string[]).includes(t.text)) {
              throw line.err(`invalid class '${t.text}' (want all, success, denial or error)`, t);
            }
            classes.add(t.text as LogClass);
          }
          break;
        }
        case 'minDuration': {
          line.expectArgs(0, 1);
          const t = line.argTokens[0];
          if (!t) { minDurationMs = DEFAULT_MIN_DURATION_MS; break; }
          minDurationMs = line.duration(t);
          if (minDurationMs < 0) throw line.err(`minDuration must not be negative, got '${t.text}'`, t);
          break;
        }
        case 'format': {
          const [kind] = line.expectArgs(1);
          if (kind !== 'json' && kind !== 'text') throw line.err(`unknown format '${kind}' (want json or text)`, line.argTokens[0]);
          json = kind === 'json';
          break;
        }
        default:
          throw line.unknownProperty();
      }
    }
    if (classes.size === 0) classes.add('all');
    return { names, format, classes, minDurationMs, json };
  },
  setup(cfg, env) {
    const { rules, fresh } = rulesFor(env);
    rules.push(compileRule(cfg));
    if (fresh) {
      const log = env.log;
      env.onResponse((req, reply, size, ms) => logResponse(rules, log, req, reply, size, ms));
    }
    return undefined;
  },
});
