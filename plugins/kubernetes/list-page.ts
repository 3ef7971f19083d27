// A list answer (`{"kind":"ServiceList","metadata":{...},"items":[...]}`) read one item at a time.
//
// Why not JSON.parse of the whole page: a page of 500 EndpointSlices or Pods parses into several MiB
// of objects that all stay alive until the page is converted. That is more than V8's young generation
// (2 MiB semi-spaces in the Deployment), so every page was promoted to the old generation and died
// there: that growth, between the paced major GCs, was most of the RSS peak of a list or relist
// (docs/performance.md, "Memory during list and relist"). Here the page stays bytes: one scan finds
// where each item starts and ends, the fields around `items` are parsed on their own, and each item is
// parsed only when iterated, so the caller converts it and drops it while it is still young.
//
// The scan only tracks nesting and strings (escapes included); JSON.parse still validates every part
// it is given, and a structure the scan cannot follow (truncated body, not an object) is a SyntaxError.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** The items of one list page, parsed one by one as they are iterated (each time anew). */
export class ListItems implements Iterable<unknown> {
  private readonly bytes: Buffer;
  /** start, end, start, end, ... of each item's JSON text in `bytes`. */
  private readonly spans: Uint32Array;
  private readonly owned: boolean;
  private released = false;

  constructor(bytes: Buffer, spans: Uint32Array, owned = false) {
    this.bytes = bytes;
    this.spans = spans;
    this.owned = owned;
  }

  /**
   * Done with the page: its bytes are freed now when they are ours alone (`owned`), instead of when a
   * major GC finds them (the buffer lived through the page's conversion, so it is in the old
   * generation by then, and a list's pages piled up there: ~1 MiB each). No item can be read after.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    const ab = this.bytes.buffer;
    if (this.owned && ab instanceof ArrayBuffer && !ab.detached) ab.transfer(0);
  }

  get length(): number {
    return this.spans.length / 2;
  }

  /** Item `i`, freshly parsed. */
  at(i: number): unknown {
    if (this.released) throw new Error('list page: items read after release()');
    return JSON.parse(utf8(this.bytes, this.spans[2 * i]!, this.spans[2 * i + 1]!));
  }

  *[Symbol.iterator](): Iterator<unknown> {
    for (let i = 0; i < this.length; i++) yield this.at(i);
  }
}

/** A list page: everything but `items` parsed, and the items to parse one by one. */
export interface ParsedListPage {
  /** The top-level fields other than `items` (kind, apiVersion, metadata). */
  fields: Record<string, unknown>;
  items: ListItems;
}

function utf8(bytes: Buffer, start: number, end: number): string {
  return bytes.toString('utf8', start, end);
}

function syntax(what: string, at: number): SyntaxError {
  return new SyntaxError(`list page: ${what} at byte ${at}`);
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipSpace(b: Uint8Array, i: number): number {
  while (i < b.length && isSpace(b[i]!)) i++;
  return i;
}

/** `b[i]` is a quote: the index after the closing quote. */
function skipString(b: Uint8Array, i: number): number {
  const n = b.length;
  for (i++; i < n; i++) {
    const c = b[i]!;
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) i++;
  }
  throw syntax('unterminated string', n);
}

/** The index after the JSON value starting at `i` (no leading space). */
function skipValue(b: Uint8Array, i: number): number {
  const n = b.length;
  const first = b[i];
  if (first === QUOTE) return skipString(b, i);
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    let depth = 0;
    while (i < n) {
      const c = b[i]!;
      if (c === QUOTE) { i = skipString(b, i); continue; }
      if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
      else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    throw syntax('unterminated object or array', n);
  }
  // A number, true, false or null: up to the next delimiter.
  const start = i;
  while (i < n) {
    const c = b[i]!;
    if (c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET || isSpace(c)) break;
    i++;
  }
  if (i === start) throw syntax('value expected', i);
  return i;
}

/** The spans of the elements of the array whose `[` is at `i`; and the index after its `]`. */
function scanArray(b: Uint8Array, i: number): { spans: Uint32Array; end: number } {
  let spans = new Uint32Array(2 * 64);
  let count = 0;
  i = skipSpace(b, i + 1);
  if (b[i] === CLOSE_BRACKET) return { spans: spans.subarray(0, 0), end: i + 1 };
  for (;;) {
    if (i >= b.length) throw syntax('unterminated array', i);
    const end = skipValue(b, i);
    if (2 * count + 2 > spans.length) {
      const grown = new Uint32Array(spans.length * 2);
      grown.set(spans);
      spans = grown;
    }
    spans[2 * count] = i;
    spans[2 * count + 1] = end;
    count++;
    i = skipSpace(b, end);
    const c = b[i];
    if (c === CLOSE_BRACKET) return { spans: spans.slice(0, 2 * count), end: i + 1 };
    if (c !== COMMA) throw syntax("',' or ']' expected", i);
    i = skipSpace(b, i + 1);
  }
}

/**
 * Split a list answer into its items and the rest. Throws SyntaxError when the body is not a JSON
 * object (or is cut short); the items themselves are validated when they are parsed. `owned`: the
 * bytes are the whole of an ArrayBuffer nobody else holds, which `items.release()` may free.
 */
export function parseListPage(bytes: Uint8Array, opts: { owned?: boolean } = {}): ParsedListPage {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let i = skipSpace(b, 0);
  if (b[i] !== OPEN_BRACE) throw syntax("'{' expected", i);
  i = skipSpace(b, i + 1);
  // The fields other than items, re-joined into one small object to parse.
  const rest: string[] = [];
  let items: Uint32Array | undefined;
  if (b[i] !== CLOSE_BRACE) {
    for (;;) {
      if (b[i] !== QUOTE) throw syntax('field name expected', i);
      const keyStart = i;
      const keyEnd = skipString(b, i);
      i = skipSpace(b, keyEnd);
      if (b[i] !== COLON) throw syntax("':' expected", i);
      i = skipSpace(b, i + 1);
      if (i >= b.length) throw syntax('value expected', i);
      const key = JSON.parse(utf8(b, keyStart, keyEnd)) as string;
      if (key === 'items' && b[i] === OPEN_BRACKET) {
        const arr = scanArray(b, i);
        items = arr.spans;
        i = arr.end;
      } else {
        const end = skipValue(b, i);
        if (key !== 'items') rest.push(`${utf8(b, keyStart, keyEnd)}:${utf8(b, i, end)}`);
        i = end;
      }
      i = skipSpace(b, i);
      if (b[i] === CLOSE_BRACE) break;
      if (b[i] !== COMMA) throw syntax("',' or '}' expected", i);
      i = skipSpace(b, i + 1);
    }
  }
  const after = skipSpace(b, i + 1);
  if (after !== b.length) throw syntax('trailing data', after);
  const fields = JSON.parse(`{${rest.join(',')}}`) as Record<string, unknown>;
  const owned = opts.owned === true && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;
  return { fields, items: new ListItems(b, items ?? new Uint32Array(0), owned) };
}
