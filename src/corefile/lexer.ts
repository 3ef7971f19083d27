// Corefile lexer, following the Caddy v1 lexer that CoreDNS uses (github.com/coredns/caddy):
// - tokens are separated by white space (Go's unicode.IsSpace); '\r' outside quotes is ignored;
// - a '"' at the start of a token opens a quoted token that runs to the next unescaped '"' and may
//   span lines; inside it only \" is an escape, any other backslash is kept together with the
//   character after it (so "a\\b" stays a\\b and "a\\" ends after the second backslash, exactly as
//   CoreDNS reads them); the token's line is the line of its opening quote;
// - an unquoted '#' starts a comment up to the end of the line, also in the middle of a word
//   (`1.1.1.1#x` is the token `1.1.1.1`), as in Caddy v1;
// - a leading byte order mark is dropped.
// Environment references ({$NAME}, {%NAME%}, {%NAME}) are then replaced inside each token, as
// CoreDNS does: a value never splits into several tokens and never becomes a brace.

import { CorefileError, type Token } from './types.ts';

export interface LexToken extends Token {
  /** Line of the token's last character (> line only for quoted tokens spanning lines). */
  endLine: number;
  /** Did environment substitution change this token? Such a token is never syntax (`{`, `import`). */
  expanded: boolean;
}

export type Env = Record<string, string | undefined>;

/** Go's unicode.IsSpace. */
function isSpace(c: string): boolean {
  switch (c) {
    case ' ': case '\t': case '\n': case '\v': case '\f': case '\r':
    case '\u0085': case '\u00a0': case '\u1680': case '\u2028': case '\u2029':
    case '\u202f': case '\u205f': case '\u3000':
      return true;
  }
  return c >= '\u2000' && c <= '\u200a';
}

const envRef = /\{\$([^}]+)\}|\{%([^%}]+)%?\}/g;

/** Replace {$NAME}, {%NAME%} and {%NAME} with the variable's value; unset variables become "". */
export function substituteEnv(text: string, env: Env): string {
  if (!text.includes('{')) return text;
  return text.replace(envRef, (_m, unix: string | undefined, win: string | undefined) => env[unix ?? win!] ?? '');
}

/** Split Corefile text into tokens. Throws CorefileError for an unterminated quoted string. */
export function lex(text: string, file: string, env: Env = {}): LexToken[] {
  const out: LexToken[] = [];
  let line = 1;
  let val = '';
  let inToken = false;
  let quoted = false;
  let startLine = 1;

  const emit = () => {
    const t = substituteEnv(val, env);
    out.push({ text: t, file, line: startLine, quoted, endLine: line, expanded: t !== val });
    val = '';
    inToken = false;
    quoted = false;
  };

  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  while (i < text.length) {
    const cp = text.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    i += ch.length;

    if (quoted) {
      if (ch === '\\' && i < text.length) {
        // The backslash takes the next character with it: \" is a quote, anything else stays as is.
        const next = String.fromCodePoint(text.codePointAt(i)!);
        i += next.length;
        if (next === '\n') line++;
        val += next === '"' ? '"' : '\\' + next;
        continue;
      }
      if (ch === '"') { emit(); continue; }
      if (ch === '\n') line++;
      val += ch;
      continue;
    }

    if (isSpace(ch)) {
      if (inToken) emit();
      if (ch === '\n') line++;
      continue;
    }

    if (ch === '#') {
      if (inToken) emit();
      const nl = text.indexOf('\n', i);
      i = nl === -1 ? text.length : nl;
      continue;
    }

    if (!inToken) {
      inToken = true;
      startLine = line;
      if (ch === '"') { quoted = true; continue; }
    }
    val += ch;
  }

  if (quoted) throw new CorefileError(file, startLine, undefined, 'Unterminated quoted string');
  if (inToken) emit();
  return out;
}
