// CoreDNS-style log lines ("[INFO] plugin/reload: ..."), so runbooks that grep CoreDNS logs still work.

export type Level = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'FATAL';
export type Sink = (line: string) => void;

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** A logger whose lines start with `prefix: ` (e.g. "plugin/kubernetes"). */
  child(prefix: string): Logger;
  /** Write a line exactly as given (the log plugin's query lines). */
  raw(line: string): void;
}

export function stdoutSink(line: string): void {
  process.stdout.write(line + '\n');
}

export function createLogger(sink: Sink = stdoutSink, opts: { debug?: boolean; prefix?: string } = {}): Logger {
  const prefix = opts.prefix ? opts.prefix + ': ' : '';
  const emit = (level: Level, msg: string) => sink(`[${level}] ${prefix}${msg}`);
  return {
    debug: (m) => { if (opts.debug) emit('DEBUG', m); },
    info: (m) => emit('INFO', m),
    warn: (m) => emit('WARNING', m),
    error: (m) => emit('ERROR', m),
    child: (p) => createLogger(sink, { ...opts, prefix: opts.prefix ? `${opts.prefix}/${p}` : p }),
    raw: (line) => sink(line),
  };
}

/** A logger that keeps lines in memory, for tests. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger((l) => lines.push(l), { debug: true }), { lines });
}
