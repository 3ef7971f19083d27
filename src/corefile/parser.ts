// Corefile parser: server blocks, nested directive blocks, snippets and `import`, with CoreDNS's
// (Caddy v1's) semantics. Which directives exist and what their arguments mean is checked elsewhere.
//
// Grammar, as CoreDNS reads it:
//   file      = { snippet | block }
//   snippet   = "(name)" "{" tokens "}"            -- replayed by `import name`
//   block     = keys ( "{" lines "}" | "{}" | lines-to-EOF | EOF )
//   keys      = key { key } on one line; a key ending in ',' continues on the next line
//   lines     = { line }
//   line      = name { arg } [ "{" lines "}" | "{}" ]   -- all on one line up to the "{"
//   `import X` at the start of a line (or of a top-level statement) is replaced by the tokens of
//   snippet X or of the file(s) X names, before parsing goes on.

import { globSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createLogger } from '../log.ts';
import { canonical, expandIPv6, isDomainName } from '../dns/name.ts';
import { type Env, lex, type LexToken } from './lexer.ts';
import { CorefileError, type Corefile, type Directive, type ServerBlock, type ServerKey, type Token } from './types.ts';

export interface ParseOptions {
  /** Name of the main file, used in errors and to resolve relative imports. */
  file: string;
  /** Variables for {$NAME} / {%NAME%}; default process.env. */
  env?: Env;
  /** Reads an imported file; default fs.readFileSync(path, 'utf8'). */
  readFile?: (path: string) => string;
  /** Expands an absolute glob pattern; default fs.globSync. */
  glob?: (pattern: string) => string[];
  /** Non-fatal problems (an import glob that matches nothing); default: a [WARNING] log line. */
  warn?: (message: string) => void;
}

/** Caddy's cap on import expansions: a guard against exponential snippet/file fan-out. */
const maxExpansions = 1000;

/** Schemes CoreDNS knows (plugin/pkg/parse/transport.go); only dns:// is served here. */
const knownSchemes = new Set(['dns', 'tls', 'quic', 'grpc', 'https', 'https3', 'unix']);

interface Tok extends LexToken {
  /** One number per lexed file or spliced import; tokens of different origins never share a line. */
  origin: number;
  /** The files ("/abs/path") and snippets ("(name)") whose import led to this token. */
  chain: readonly string[];
}

interface RawKey { text: string; tok: Tok }

const isBrace = (t: Tok, b: '{' | '}' | '{}') => t.text === b && !t.quoted && !t.expanded;
const isStructural = (t: Tok) => isBrace(t, '{') || isBrace(t, '}') || isBrace(t, '{}');
const isImport = (t: Tok) => t.text === 'import' && !t.quoted && !t.expanded;
const pub = (t: Tok): Token => ({ text: t.text, file: t.file, line: t.line, quoted: t.quoted });
const err = (t: { file: string; line: number }, message: string) => new CorefileError(t.file, t.line, undefined, message);

/** The OS reason of a failed file operation, in Go's words ("no such file or directory"). */
function osReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT': return 'no such file or directory';
    case 'EACCES': return 'permission denied';
    case 'EISDIR': return 'is a directory';
    case 'ENOTDIR': return 'not a directory';
  }
  const msg = e instanceof Error ? e.message : String(e);
  return /^[A-Z0-9_]+: (.*?)(?:, \w+ '.*')?$/s.exec(msg)?.[1] ?? msg;
}

class Parser {
  private toks: Tok[];
  private pos = 0;
  private nextOrigin = 1;
  private snippetExpansions = 0;
  private fileExpansions = 0;
  private readonly snippets = new Map<string, Tok[]>();
  private readonly seenKeys = new Map<string, ServerKey>();
  readonly blocks: ServerBlock[] = [];
  readonly files: string[];

  private readonly env: Env;
  private readonly readFile: (p: string) => string;
  private readonly glob: (p: string) => string[];
  private readonly warn: (m: string) => void;

  constructor(text: string, opts: ParseOptions) {
    this.env = opts.env ?? process.env;
    this.readFile = opts.readFile ?? ((p) => readFileSync(p, 'utf8'));
    this.glob = opts.glob ?? ((p) => globSync(p));
    this.warn = opts.warn ?? ((m) => createLogger().warn(m));
    this.files = [opts.file];
    const chain = [path.resolve(opts.file)];
    this.toks = lex(text, opts.file, this.env).map((t) => ({ ...t, origin: 0, chain }));
  }

  private peek(): Tok | undefined { return this.toks[this.pos]; }

  private sameLine(a: Tok, b: Tok): boolean {
    return a.file === b.file && a.origin === b.origin && a.endLine === b.line;
  }

  /** The token starting the next statement, after replacing any `import` lines there. */
  private statement(): Tok | undefined {
    for (;;) {
      const t = this.peek();
      if (t === undefined || !isImport(t)) return t;
      this.expandImport();
    }
  }

  parse(): void {
    for (;;) {
      const t = this.statement();
      if (t === undefined) return;
      if (isBrace(t, '}')) throw err(t, "Unexpected '}' because no matching opening brace");
      if (isBrace(t, '{') || isBrace(t, '{}')) throw err(t, `Unexpected '${t.text}': a server block needs keys before its '{'`);
      const keys = this.keys();
      if (keys.length === 1 && /^\(.*\)$/s.test(keys[0]!.text)) this.snippet(keys[0]!);
      else this.serverBlock(keys, t);
    }
  }

  /** Keys up to the end of the line (or past it after a trailing comma), or up to a brace. */
  private keys(): RawKey[] {
    const keys: RawKey[] = [];
    let prev: Tok | undefined;
    let expectAnother = false;
    for (;;) {
      const t = this.peek();
      if (t === undefined) {
        if (expectAnother) throw err(prev!, `Unexpected EOF: expected another key after '${prev!.text}'`);
        return keys;
      }
      if (prev !== undefined) {
        if (isStructural(t)) {
          if (expectAnother) throw err(t, `Expected another address but had '${t.text}' - check for extra comma`);
          return keys;
        }
        if (!expectAnother && !this.sameLine(prev, t)) return keys;
      }
      this.pos++;
      for (const part of t.text.split(',')) if (part !== '') keys.push({ text: part, tok: t });
      expectAnother = t.text.endsWith(',');
      prev = t;
    }
  }

  private snippet(key: RawKey): void {
    const name = key.text.slice(1, -1);
    const open = this.peek();
    if (open === undefined || !(isBrace(open, '{') || isBrace(open, '{}'))) {
      throw err(open ?? key.tok, `Unexpected token '${open?.text ?? 'EOF'}', expecting '{' after snippet ${key.text}`);
    }
    if (this.snippets.has(name)) throw err(key.tok, `redeclaration of previously declared snippet ${name}`);
    this.pos++;
    const body: Tok[] = [];
    if (isBrace(open, '{')) {
      let depth = 1;
      for (;;) {
        const t = this.peek();
        if (t === undefined) throw err(open, "Unexpected EOF: the '{' opened here is never closed");
        this.pos++;
        if (isBrace(t, '{')) depth++;
        else if (isBrace(t, '}') && --depth === 0) break;
        body.push(t);
      }
    }
    this.snippets.set(name, body);
  }

  private serverBlock(raw: RawKey[], first: Tok): void {
    if (raw.length === 0) throw err(first, 'missing server block keys');
    const keys = raw.flatMap((k) => parseServerKey(k.text, k.tok.file, k.tok.line));
    for (const k of keys) {
      const id = `${k.zone} ${k.port ?? ''}`;
      if (this.seenKeys.has(id)) {
        throw err(k, `cannot serve dns://${k.zone}${k.port === null ? '' : ':' + k.port} - it is already defined`);
      }
      this.seenKeys.set(id, k);
    }

    let directives: Directive[];
    const t = this.peek();
    if (t === undefined) {
      directives = []; // a file holding only keys (Caddy accepts it)
    } else if (isBrace(t, '{}')) {
      this.pos++;
      directives = [];
    } else if (isBrace(t, '{')) {
      this.pos++;
      directives = this.lines(t).lines;
    } else if (isBrace(t, '}')) {
      throw err(t, "Unexpected '}' because no matching opening brace");
    } else {
      // Caddy lets a Corefile omit the braces; the block then runs to the end of the file. Only the
      // first block may do that: after another block a missing '{' is almost surely a typo.
      if (this.blocks.length > 0) {
        throw err(t, `missing '{' after the keys of the server block on line ${first.line}` +
          ' (only a Corefile with a single server block may omit the braces)');
      }
      directives = this.lines(undefined).lines;
    }
    this.blocks.push({ keys, directives, file: first.file, line: first.line });
  }

  /** Lines up to the '}' matching `open` (consumed, returned as `close`), or to EOF when there is no `open`. */
  private lines(open: Tok | undefined): { lines: Directive[]; close: Tok | undefined } {
    const out: Directive[] = [];
    for (;;) {
      const t = this.statement();
      if (t === undefined) {
        if (open !== undefined) throw err(open, "Unexpected EOF: the '{' opened here is never closed");
        return { lines: out, close: undefined };
      }
      if (isBrace(t, '}')) {
        if (open === undefined) throw err(t, "Unexpected '}' because no matching opening brace");
        this.pos++;
        return { lines: out, close: t };
      }
      if (isBrace(t, '{') || isBrace(t, '{}')) {
        throw err(t, `Unexpected '${t.text}': a block must open on the same line as its directive`);
      }
      this.pos++;
      const args: Tok[] = [];
      let last = t;
      let n = this.peek();
      while (n !== undefined && this.sameLine(last, n) && !isStructural(n)) {
        args.push(n);
        this.pos++;
        last = n;
        n = this.peek();
      }
      let block: Directive[] | null = null;
      let close: Tok | undefined;
      if (n !== undefined && this.sameLine(last, n)) {
        if (isBrace(n, '{')) {
          this.pos++;
          ({ lines: block, close } = this.lines(n));
        } else if (isBrace(n, '{}')) {
          this.pos++;
          block = [];
          close = n;
        }
        // A '}' on the same line is left for the loop: it closes the enclosing block.
      }
      if (close !== undefined) {
        const after = this.peek();
        if (after !== undefined && this.sameLine(close, after) && !isBrace(after, '}')) {
          throw err(after, `Unexpected '${after.text}' after '}': start it on a new line`);
        }
      }
      out.push({ name: pub(t), args: args.map(pub), block });
    }
  }

  /** Replace `import ARG` at this.pos with the tokens it names. */
  private expandImport(): void {
    const kw = this.toks[this.pos]!;
    const args: Tok[] = [];
    let last = kw;
    for (let j = this.pos + 1; j < this.toks.length; j++) {
      const t = this.toks[j]!;
      if (!this.sameLine(last, t) || isStructural(t)) break;
      args.push(t);
      last = t;
    }
    if (args.length === 0) throw err(kw, "Wrong argument count or unexpected line ending after 'import'");
    if (args.length > 1) throw err(args[1]!, 'Import takes only one argument (glob pattern or file)');
    const pattern = args[0]!.text;
    if (pattern === '') throw err(args[0]!, 'Import requires a non-empty filepath');
    const imported = this.importTokens(kw, pattern);
    this.toks = [...this.toks.slice(0, this.pos), ...imported, ...this.toks.slice(this.pos + 2)];
  }

  private importTokens(kw: Tok, pattern: string): Tok[] {
    const cycle = (target: string) =>
      err(kw, `import cycle: ${[...kw.chain, target].join(' -> ')}`);

    const snippet = this.snippets.get(pattern);
    if (snippet !== undefined) {
      const id = `(${pattern})`;
      if (kw.chain.includes(id)) throw cycle(id);
      if (++this.snippetExpansions > maxExpansions) throw err(kw, `maximum snippet import depth (${maxExpansions}) exceeded`);
      const origin = this.nextOrigin++;
      const chain = [...kw.chain, id];
      return snippet.map((t) => ({ ...t, origin, chain }));
    }

    if (++this.fileExpansions > maxExpansions) throw err(kw, `maximum file import depth (${maxExpansions}) exceeded`);
    // Relative to the file of the import line (for a snippet: the file defining it), as Caddy does.
    const dir = path.dirname(path.resolve(kw.file));
    const target = path.resolve(dir, pattern);
    const isGlob = /[*?[\]]/.test(target);
    let matches: string[];
    if (isGlob) {
      const count = (c: string) => target.split(c).length - 1;
      if (count('*') > 1 || count('?') > 1 || (target.includes('[') && target.includes(']'))) {
        // Caddy's guard against patterns that take too long to expand.
        throw err(kw, `Glob pattern may only contain one wildcard (*), but has others: ${target}`);
      }
      matches = this.glob(target).map((m) => path.resolve(dir, m)).sort();
      if (matches.length === 0) {
        this.warn(`No files matching import glob pattern: ${pattern}`);
        return [];
      }
    } else {
      matches = [target];
    }

    const out: Tok[] = [];
    for (const file of matches) {
      if (kw.chain.includes(file)) throw cycle(file);
      let text: string;
      try {
        text = this.readFile(file);
      } catch (e) {
        if (!isGlob && (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
          const hint = pattern.includes('/') ? '' : ` (and no snippet '${pattern}' is defined before this line)`;
          throw err(kw, `File to import not found: ${file}${hint}`);
        }
        throw err(kw, `Could not import ${file}: ${osReason(e)}`);
      }
      if (!this.files.includes(file)) this.files.push(file);
      const origin = this.nextOrigin++;
      const chain = [...kw.chain, file];
      for (const t of lex(text, file, this.env)) out.push({ ...t, origin, chain });
    }
    return out;
  }
}

/** Parse Corefile text. Pure given its inputs (files are read only through opts.readFile/glob). */
export function parseCorefile(text: string, opts: ParseOptions): Corefile {
  const p = new Parser(text, opts);
  p.parse();
  return { file: opts.file, blocks: p.blocks, files: p.files };
}

/** Read and parse a Corefile; an unreadable file throws `open PATH: REASON`. */
export function loadCorefile(file: string, env: Env = process.env): Corefile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const op = (e as NodeJS.ErrnoException | undefined)?.code === 'EISDIR' ? 'read' : 'open';
    throw new Error(`${op} ${file}: ${osReason(e)}`, { cause: e });
  }
  return parseCorefile(text, { file, env });
}

// ---- server block keys (core/dnsserver/register.go, plugin/normalize.go) ----

/**
 * Turn a server block key into zones: `[dns://]ZONE[:PORT]`, where ZONE may be a CIDR standing for
 * its reverse zone(s). A CIDR off an octet (IPv4) or nibble (IPv6) boundary becomes every zone of the
 * next longer boundary it covers (10.0.0.0/23 → 0.0.10.in-addr.arpa. and 1.0.10.in-addr.arpa.), as
 * CoreDNS does; each keeps `text` as written.
 */
export function parseServerKey(text: string, file: string, line: number): ServerKey[] {
  const fail = (m: string) => new CorefileError(file, line, undefined, m);
  let s = text;

  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(s);
  if (scheme) {
    const name = scheme[1]!.toLowerCase();
    if (name !== 'dns') {
      throw fail(knownSchemes.has(name) ? `scheme ${name}:// is not supported yet` : `unknown scheme ${name}:// in '${text}'`);
    }
    s = s.slice(scheme[0].length);
  }

  // A trailing :digits is the port; this works for names and for CIDRs, which put /mask before it.
  let port: number | null = null;
  const colon = s.lastIndexOf(':');
  if (colon !== -1 && colon === s.length - 1) throw fail(`expecting data after last colon: "${s}"`);
  if (colon !== -1 && /^\d+$/.test(s.slice(colon + 1))) {
    port = Number(s.slice(colon + 1));
    if (port > 65535) throw fail(`invalid port '${s.slice(colon + 1)}' in '${text}': must be 0-65535`);
    s = s.slice(0, colon);
  }

  if (s === '') throw fail(`zone is not a valid domain name: '${text}' names no zone (the root zone is '.${text}')`);
  if (s.length > 255) throw fail(`specified zone is too long: ${s.length} > 255`);

  const cidr = parseCidr(s);
  if (cidr === 'invalid') throw fail(`invalid CIDR ${s}`);
  let zones: string[];
  if (cidr !== undefined) {
    zones = reverseZones(cidr);
  } else {
    if (s.includes(':') || s.includes('[') || s.includes(']')) {
      const after = s.slice(s.lastIndexOf(':') + 1);
      if (/^[^:[\]]*:[^:[\]]*$/.test(s)) throw fail(`invalid port '${after}' in '${text}'`);
      throw fail(`zone is not a valid domain name: ${s} (a key is a zone, not a listen address: see the bind plugin)`);
    }
    if (!isDomainName(s)) throw fail(`zone is not a valid domain name: ${s}`);
    zones = [canonical(s)];
  }
  return zones.map((zone) => ({ text, scheme: 'dns', zone, port, file, line }));
}


interface Cidr { bytes: number[]; ones: number }

/** An IP/prefix as Go's net.ParseCIDR reads it; 'invalid' for something that is clearly a broken one. */
function parseCidr(s: string): Cidr | 'invalid' | undefined {
  const slash = s.indexOf('/');
  if (slash === -1) return undefined;
  const looksLikeCidr = /^(\d+(\.\d+){3}|[0-9a-fA-F.]*:[0-9a-fA-F:.]*)\/\d+$/.test(s);
  const addr = s.slice(0, slash);
  const mask = s.slice(slash + 1);
  let bytes: number[] | undefined;
  if (addr.includes(':')) {
    const words = addr.includes('%') ? undefined : expandIPv6(addr);
    bytes = words?.flatMap((w) => [w >> 8, w & 0xff]);
  } else {
    const parts = addr.split('.');
    // netip.ParseAddr: four decimal octets, no leading zeros.
    if (parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) bytes = parts.map(Number);
  }
  if (bytes === undefined || !/^\d+$/.test(mask) || Number(mask) > bytes.length * 8) return looksLikeCidr ? 'invalid' : undefined;
  // CoreDNS refuses IPv6 CIDRs written from "::" or "0..." (register.go via plugin.SplitHostPort).
  if (s.startsWith(':') || (s.startsWith('0') && s.includes(':'))) return 'invalid';
  const ones = Number(mask);
  for (let bit = ones; bit < bytes.length * 8; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { bytes, ones };
}

/** The reverse zones covering a network, split on octet (IPv4) or nibble (IPv6) boundaries. */
function reverseZones({ bytes, ones }: Cidr): string[] {
  const v4 = bytes.length === 4;
  const digit = v4 ? 8 : 4;
  const bits = bytes.length * 8;
  const prefix = Math.ceil(ones / digit) * digit;
  const base = bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  const zones: string[] = [];
  for (let i = 0n; i < 1n << BigInt(prefix - ones); i++) {
    const net = base | (i << BigInt(bits - prefix));
    const labels: string[] = [];
    for (let d = 0; d < prefix / digit; d++) {
      const v = Number((net >> BigInt(bits - (d + 1) * digit)) & (v4 ? 0xffn : 0xfn));
      labels.unshift(v4 ? String(v) : v.toString(16));
    }
    labels.push(v4 ? 'in-addr.arpa.' : 'ip6.arpa.');
    zones.push(labels.join('.'));
  }
  return zones;
}
