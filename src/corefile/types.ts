// The parsed Corefile: server blocks of directives, each directive a tree of lines.
// Plugins never see raw text: they get a Controller over one directive (src/corefile/controller.ts).

export interface Token {
  text: string;
  file: string;
  line: number;
  /** Was the token written in quotes (so `{` or `#` inside it are literal)? */
  quoted: boolean;
}

/** One line of a Corefile block: a name, its arguments, and an optional nested `{ ... }` block. */
export interface Directive {
  name: Token;
  args: Token[];
  /** Lines of the nested block, or null when the line had no block. `{}` gives []. */
  block: Directive[] | null;
}

/** A server block key such as `.:53`, `dns://cluster.local:5300` or `10.0.0.0/24`. */
export interface ServerKey {
  /** As written. */
  text: string;
  /** "dns" (plain DNS over UDP+TCP). Other transports are rejected by the parser for now. */
  scheme: 'dns';
  /** Canonical zone: lowercase FQDN with trailing dot ("." for the root). */
  zone: string;
  /** The port as written, or null when the key names none (then -dns.port applies). */
  port: number | null;
  file: string;
  line: number;
}

export interface ServerBlock {
  keys: ServerKey[];
  directives: Directive[];
  file: string;
  line: number;
}

export interface Corefile {
  /** Path of the main file (or "<string>" when parsed from text). */
  file: string;
  blocks: ServerBlock[];
  /** Every file read (main file + imports), so reload can watch contents. */
  files: string[];
}

export class CorefileError extends Error {
  readonly file: string;
  readonly line: number;
  readonly directive: string | undefined;
  constructor(file: string, line: number, directive: string | undefined, message: string) {
    super(directive !== undefined
      ? `plugin/${directive}: ${file}:${line} - Error during parsing: ${message}`
      : `${file}:${line} - Error during parsing: ${message}`);
    this.name = 'CorefileError';
    this.file = file;
    this.line = line;
    this.directive = directive;
  }
}
