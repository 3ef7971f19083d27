// Kubernetes label selectors in their string form (the `labelSelector` query parameter and the Corefile's
// `labels` / `namespace_labels`): `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, and the
// numeric `a>1`, `a<1`, joined by commas (all must hold). The API source sends the string to the server;
// the manifests source and the test API server match locally with this module.

export type Operator = 'exists' | 'notexists' | 'eq' | 'neq' | 'in' | 'notin' | 'gt' | 'lt';

export interface Requirement {
  readonly key: string;
  readonly op: Operator;
  /** One value for eq/neq/gt/lt, one or more for in/notin, none for exists/notexists. */
  readonly values: readonly string[];
}

export interface Selector {
  /** The expression as given (trimmed). */
  readonly source: string;
  /** All must hold; empty matches everything. */
  readonly requirements: readonly Requirement[];
}

export const everything: Selector = { source: '', requirements: [] };

type Token =
  | { t: 'word'; v: string; at: number }
  | { t: 'op'; v: '=' | '==' | '!=' | '!' | '>' | '<'; at: number }
  | { t: '(' | ')' | ','; at: number }
  | { t: 'end'; at: number };

const wordChar = /[A-Za-z0-9._\/-]/;

function lex(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') { i++; continue; }
    if (c === '(' || c === ')' || c === ',') { out.push({ t: c, at: i }); i++; continue; }
    if (c === '=') {
      if (s[i + 1] === '=') { out.push({ t: 'op', v: '==', at: i }); i += 2; } else { out.push({ t: 'op', v: '=', at: i }); i++; }
      continue;
    }
    if (c === '!') {
      if (s[i + 1] === '=') { out.push({ t: 'op', v: '!=', at: i }); i += 2; } else { out.push({ t: 'op', v: '!', at: i }); i++; }
      continue;
    }
    if (c === '>' || c === '<') { out.push({ t: 'op', v: c, at: i }); i++; continue; }
    if (wordChar.test(c)) {
      const start = i;
      while (i < s.length && wordChar.test(s[i]!)) i++;
      out.push({ t: 'word', v: s.slice(start, i), at: start });
      continue;
    }
    throw new Error(`invalid label selector "${s}": unexpected character '${c}' at ${i}`);
  }
  out.push({ t: 'end', at: s.length });
  return out;
}

const nameRe = /^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/;
const dnsSubdomainRe = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

/** The reason `key` is not a valid label key, or undefined. */
export function labelKeyError(key: string): string | undefined {
  const slash = key.indexOf('/');
  let name = key;
  if (slash >= 0) {
    const prefix = key.slice(0, slash);
    name = key.slice(slash + 1);
    if (prefix.length === 0 || prefix.length > 253 || !dnsSubdomainRe.test(prefix)) return `invalid label key prefix "${prefix}"`;
  }
  if (name.length === 0 || name.length > 63 || !nameRe.test(name)) return `invalid label key "${key}"`;
  return undefined;
}

/** The reason `value` is not a valid label value, or undefined (empty values are valid). */
export function labelValueError(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63 || !nameRe.test(value)) return `invalid label value "${value}"`;
  return undefined;
}

/** Parse a selector expression; throws an Error naming the problem on bad syntax. "" selects everything. */
export function parseSelector(expr: string): Selector {
  const source = expr.trim();
  if (source === '') return everything;
  const toks = lex(source);
  let p = 0;
  const fail = (msg: string, at: number): never => {
    throw new Error(`invalid label selector "${source}": ${msg} at ${at}`);
  };
  const peek = () => toks[p]!;
  const describe = (t: Token) => (t.t === 'word' || t.t === 'op' ? `'${t.v}'` : t.t === 'end' ? 'end of input' : `'${t.t}'`);
  const key = (t: Token): string => {
    if (t.t !== 'word') return fail(`expected a label key, found ${describe(t)}`, t.at);
    const err = labelKeyError(t.v);
    if (err) fail(err, t.at);
    return t.v;
  };
  const value = (t: Token): string => {
    if (t.t !== 'word') return fail(`expected a label value, found ${describe(t)}`, t.at);
    const err = labelValueError(t.v);
    if (err) fail(err, t.at);
    return t.v;
  };

  const reqs: Requirement[] = [];
  for (;;) {
    const first = toks[p++]!;
    if (first.t === 'op' && first.v === '!') {
      reqs.push({ key: key(toks[p++]!), op: 'notexists', values: [] });
    } else {
      const k = key(first);
      const next = peek();
      if (next.t === ',' || next.t === 'end') {
        reqs.push({ key: k, op: 'exists', values: [] });
      } else if (next.t === 'op' && next.v !== '!') {
        p++;
        const op = next.v;
        // `a=` selects an empty value: the value token may be missing.
        const vt = peek();
        let v = '';
        if (vt.t === 'word') { v = value(vt); p++; } else if (op === '>' || op === '<') fail(`expected a number after '${op}'`, vt.at);
        if (op === '>' || op === '<') {
          if (!/^-?[0-9]+$/.test(v)) fail(`'${op}' needs an integer, found "${v}"`, vt.at);
          reqs.push({ key: k, op: op === '>' ? 'gt' : 'lt', values: [v] });
        } else {
          reqs.push({ key: k, op: op === '!=' ? 'neq' : 'eq', values: [v] });
        }
      } else if (next.t === 'word' && (next.v === 'in' || next.v === 'notin')) {
        p++;
        const open = toks[p++]!;
        if (open.t !== '(') fail(`expected '(' after '${next.v}', found ${describe(open)}`, open.at);
        const values: string[] = [];
        for (;;) {
          const vt = toks[p++]!;
          if (vt.t === ')' && values.length === 0) fail(`'${next.v}' needs at least one value`, vt.at);
          // An empty value is allowed between commas: `a in (x,)` selects x or "".
          if (vt.t === ',' || vt.t === ')') { values.push(''); p--; } else values.push(value(vt));
          const sep = toks[p++]!;
          if (sep.t === ')') break;
          if (sep.t !== ',') fail(`expected ',' or ')' in value set, found ${describe(sep)}`, sep.at);
        }
        reqs.push({ key: k, op: next.v, values });
      } else {
        fail(`expected an operator after "${k}", found ${describe(next)}`, next.at);
      }
    }
    const sep = toks[p++]!;
    if (sep.t === 'end') break;
    if (sep.t !== ',') fail(`expected ',' or end of input, found ${describe(sep)}`, sep.at);
  }
  return { source, requirements: reqs };
}

function holds(r: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, r.key);
  const v = has ? labels[r.key]! : undefined;
  switch (r.op) {
    case 'exists': return has;
    case 'notexists': return !has;
    case 'eq': return has && v === r.values[0];
    case 'neq': return !has || v !== r.values[0];
    case 'in': return has && r.values.includes(v!);
    case 'notin': return !has || !r.values.includes(v!);
    case 'gt':
    case 'lt': {
      if (!has || !/^-?[0-9]+$/.test(v!)) return false;
      const n = Number(v);
      const bound = Number(r.values[0]);
      return r.op === 'gt' ? n > bound : n < bound;
    }
  }
}

/** Does an object with these labels match? (Missing labels count as an empty set.) */
export function matches(sel: Selector, labels: Readonly<Record<string, string>> | undefined | null): boolean {
  const l = labels ?? {};
  for (const r of sel.requirements) if (!holds(r, l)) return false;
  return true;
}
