import type { Logger } from '../../src/log.ts';
import { DnsError, type ErrorObserver } from '../../src/plugin.ts';
import type { Request } from '../../src/request.ts';
import { Rcode, typeName } from '../../src/dns/types.ts';
import { formatDuration } from './duration.ts';

export type Level = 'error' | 'warning' | 'info' | 'debug';

/** `consolidate DURATION REGEXP [LEVEL] [show_first]`. */
export interface ConsolidateRule {
  periodMs: number;
  /** The expression as written: it is quoted back in the summary line. */
  source: string;
  pattern: RegExp;
  level: Level;
  /** Log the first matching error at once, then only a summary if more followed. */
  showFirst: boolean;
}

export interface ErrorsConfig {
  /** Log the stack of unexpected exceptions (CoreDNS: stacktrace on panic recovery). */
  stacktrace: boolean;
  consolidate: ConsolidateRule[];
}

function emit(log: Logger, level: Level, line: string): void {
  switch (level) {
    case 'error': log.error(line); break;
    case 'warning': log.warn(line); break;
    case 'info': log.info(line); break;
    case 'debug': log.debug(line); break;
  }
}

/** The text CoreDNS would print for a failed query: error message only, no plugin prefix. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

interface Window {
  rule: ConsolidateRule;
  count: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Logs chain failures as `RCODE NAME TYPE: message`, folding errors that match a consolidate rule into
 * one summary line per window. Windows start at the first matching error and last the rule's period.
 */
export class ErrorLogger {
  private readonly log: Logger;
  private readonly stacktrace: boolean;
  private readonly windows: Window[];
  private stopped = false;

  constructor(cfg: ErrorsConfig, log: Logger) {
    this.log = log;
    this.stacktrace = cfg.stacktrace;
    this.windows = cfg.consolidate.map((rule) => ({ rule, count: 0, timer: undefined }));
  }

  readonly observe: ErrorObserver = (req, err, panic) => {
    const text = errorText(err);
    // The first rule that matches owns the error; once stopped, errors are logged one by one again.
    const w = this.stopped ? undefined : this.windows.find((x) => x.rule.pattern.test(text));
    if (!w) {
      this.log.error(this.line(req, err, text, panic));
      return;
    }
    if (++w.count === 1) {
      w.timer = setTimeout(() => this.flush(w), w.rule.periodMs);
      w.timer.unref();
      if (w.rule.showFirst) emit(this.log, w.rule.level, this.line(req, err, text, panic));
    }
  };

  /** CoreDNS's `RCODE NAME TYPE: message`; an unexpected exception counts as SERVFAIL. */
  private line(req: Request, err: unknown, text: string, panic: boolean): string {
    const rcode = err instanceof DnsError ? err.rcode : Rcode.SERVFAIL;
    const head = `${rcode} ${req.name} ${typeName(req.qtype)}: ${text}`;
    if (this.stacktrace && panic && err instanceof Error && err.stack) return `${head}\n${err.stack}`;
    return head;
  }

  private flush(w: Window): void {
    const n = w.count;
    w.count = 0;
    w.timer = undefined;
    // With show_first a lone error was already printed in full; a summary of one would repeat it.
    if (n === 0 || (n === 1 && w.rule.showFirst)) return;
    emit(this.log, w.rule.level, `${n} errors like '${w.rule.source}' occurred in last ${formatDuration(w.rule.periodMs)}`);
  }

  /** Stop consolidating: pending windows are reported now, later errors are logged as they come. */
  stop(): void {
    this.stopped = true;
    for (const w of this.windows) {
      if (w.timer) clearTimeout(w.timer);
      this.flush(w);
    }
  }
}
