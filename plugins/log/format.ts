// Query log formats: CoreDNS's placeholders ({remote}, {>id}, {rcode}, ...), compiled once at setup
// into a list of literal strings and field functions, so a query costs one pass and no regex.
import { type Msg, className, typeName } from '../../src/dns/types.ts';
import type { Request } from '../../src/request.ts';

/** CoreDNS's Common Log Format. */
export const COMMON_FORMAT = '{remote}:{port} - {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}" {rcode} {>rflags} {rsize} {duration}';
/** The Common Log Format plus the query's opcode. */
export const COMBINED_FORMAT = `${COMMON_FORMAT} "{>opcode}"`;
/** What a placeholder prints when it has no value. */
export const EMPTY = '-';

export type Field = (req: Request, reply: Msg, size: number, durationMs: number) => string;
export type Formatter = Field;

interface Placeholder {
  /** JSON key. */
  key: string;
  text: Field;
  /** The value as a JSON literal. */
  json: Field;
}

// miekg/dns's rcode names (16 prints as BADSIG there, not BADVERS); unknown codes print as numbers.
const rcodeText: Record<number, string> = {
  0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 6: 'YXDOMAIN',
  7: 'YXRRSET', 8: 'NXRRSET', 9: 'NOTAUTH', 10: 'NOTZONE', 11: 'DSOTYPENI', 16: 'BADSIG', 17: 'BADKEY',
  18: 'BADTIME', 19: 'BADMODE', 20: 'BADNAME', 21: 'BADALG', 22: 'BADTRUNC', 23: 'BADCOOKIE',
};

export function rcodeString(rcode: number): string {
  return rcodeText[rcode] ?? String(rcode);
}

/** The address as a client sees itself: IPv4-mapped IPv6 back to dotted IPv4. */
export function plainAddress(addr: string): string {
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/** RFC 3986 host form: IPv6 in brackets. */
function hostText(addr: string): string {
  if (addr === '') return EMPTY;
  const a = plainAddress(addr);
  return a.includes(':') ? `[${a}]` : a;
}

/** Response flags as CoreDNS prints them: "qr,aa,rd,ra". RD and CD are the query's, as the server writes them. */
export function flagsText(req: Request, m: Msg): string {
  const f = m.flags;
  let s = 'qr';
  if (f.aa) s += ',aa';
  if (f.tc) s += ',tc';
  if (req.query.flags & 0x0100) s += ',rd';
  if (f.ra) s += ',ra';
  if (f.ad) s += ',ad';
  if (req.query.flags & 0x0010) s += ',cd';
  return s;
}

/** Seconds with as many digits as needed and never an exponent (Go's strconv 'f', -1). */
export function secondsText(durationMs: number): string {
  const s = Math.round(durationMs * 1e6) / 1e9;
  const t = String(s);
  return t.includes('e') ? s.toFixed(9).replace(/0+$/, '').replace(/\.$/, '') : t;
}

const str = (s: string) => JSON.stringify(s);

/** The size the client advertised, as CoreDNS logs it (not the server's clamp): TCP 65535, no EDNS 512. */
function advertisedSize(r: Request): number {
  if (r.proto === 'tcp') return 65535;
  const e = r.query.edns;
  return e ? Math.max(512, e.udpSize) : 512;
}

const known: Record<string, Placeholder> = {
  '{type}': { key: 'type', text: (r) => typeName(r.qtype), json: (r) => str(typeName(r.qtype)) },
  '{name}': { key: 'name', text: (r) => r.name, json: (r) => str(r.name) },
  '{class}': { key: 'class', text: (r) => className(r.qclass), json: (r) => str(className(r.qclass)) },
  '{proto}': { key: 'proto', text: (r) => r.proto, json: (r) => str(r.proto) },
  '{size}': { key: 'size', text: (r) => String(r.raw.length), json: (r) => String(r.raw.length) },
  '{remote}': { key: 'remote', text: (r) => hostText(r.remoteAddress), json: (r) => str(plainAddress(r.remoteAddress)) },
  '{port}': { key: 'port', text: (r) => String(r.remotePort), json: (r) => String(r.remotePort) },
  '{local}': { key: 'local', text: (r) => hostText(r.localAddress), json: (r) => str(plainAddress(r.localAddress)) },
  '{>id}': { key: 'id', text: (r) => String(r.id), json: (r) => String(r.id) },
  '{>opcode}': { key: 'opcode', text: (r) => String(r.query.opcode), json: (r) => String(r.query.opcode) },
  '{>do}': { key: 'do', text: (r) => String(r.do), json: (r) => String(r.do) },
  '{>bufsize}': { key: 'bufsize', text: (r) => String(advertisedSize(r)), json: (r) => String(advertisedSize(r)) },
  '{rcode}': { key: 'rcode', text: (_r, m) => rcodeString(m.rcode), json: (_r, m) => str(rcodeString(m.rcode)) },
  '{rsize}': { key: 'rsize', text: (_r, _m, n) => String(n), json: (_r, _m, n) => String(n) },
  '{duration}': { key: 'duration', text: (_r, _m, _n, ms) => secondsText(ms) + 's', json: (_r, _m, _n, ms) => secondsText(ms) },
  '{>rflags}': { key: 'rflags', text: (r, m) => flagsText(r, m), json: (r, m) => str(flagsText(r, m)) },
};

/** `{/label}`: a value another plugin left on the request (metadata), or "-". */
function metadata(label: string): Placeholder {
  const value = (r: Request): string | undefined => {
    const v = r.getMeta<unknown>(label);
    if (v === undefined || v === null) return undefined;
    return typeof v === 'function' ? String((v as () => unknown)()) : String(v);
  };
  return {
    key: label,
    text: (r) => value(r) ?? EMPTY,
    json: (r) => { const v = value(r); return v === undefined ? 'null' : str(v); },
  };
}

/**
 * Split a format into literals and placeholders the way CoreDNS does: each `}` closes the nearest `{`
 * before it; unknown `{...}` stay literal text.
 */
export function tokenize(format: string): Array<string | Placeholder> {
  const out: Array<string | Placeholder> = [];
  const literal = (s: string) => {
    if (s === '') return;
    const last = out.at(-1);
    if (typeof last === 'string') out[out.length - 1] = last + s;
    else out.push(s);
  };
  let s = format;
  for (;;) {
    const j = s.indexOf('}');
    if (j < 0) break;
    const i = s.lastIndexOf('{', j);
    const label = i < 0 ? '' : s.slice(i, j + 1);
    const p = known[label] ?? (label.startsWith('{/') ? metadata(label.slice(2, -1)) : undefined);
    if (p) {
      literal(s.slice(0, i));
      out.push(p);
    } else {
      literal(s.slice(0, j + 1));
    }
    s = s.slice(j + 1);
  }
  literal(s);
  return out;
}

/** A text formatter: literals and placeholder values, concatenated. */
export function compileText(format: string): Formatter {
  const parts = tokenize(format).map((p) => (typeof p === 'string' ? p : p.text));
  return (req, reply, size, ms) => {
    let line = '';
    for (const p of parts) line += typeof p === 'string' ? p : p(req, reply, size, ms);
    return line;
  };
}

/** A JSON formatter: one object with a key per placeholder of the format (literals are dropped). */
export function compileJson(format: string): Formatter {
  const seen = new Set<string>();
  const fields: Array<{ prefix: string; json: Field }> = [];
  for (const p of tokenize(format)) {
    if (typeof p === 'string' || seen.has(p.key)) continue;
    seen.add(p.key);
    fields.push({ prefix: `${fields.length === 0 ? '{' : ','}${str(p.key)}:`, json: p.json });
  }
  if (fields.length === 0) return () => '{}';
  return (req, reply, size, ms) => {
    let line = '';
    for (const f of fields) line += f.prefix + f.json(req, reply, size, ms);
    return line + '}';
  };
}
