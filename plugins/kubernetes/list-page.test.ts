// The list page reader: items found by a byte scan and parsed one by one, the rest parsed on its own.
import { describe, expect, it } from 'vitest';
import { parseListPage } from './list-page.ts';

const bytes = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));

describe('parseListPage', () => {
  it('splits a list into its fields and its items, each parsed when read', () => {
    const list = {
      kind: 'ServiceList', apiVersion: 'v1', metadata: { resourceVersion: '42', continue: 'abc' },
      items: [{ metadata: { name: 'a' } }, { metadata: { name: 'b' }, spec: { ports: [{ port: 53 }] } }],
    };
    const page = parseListPage(bytes(JSON.stringify(list)));
    expect(page.fields).toEqual({ kind: 'ServiceList', apiVersion: 'v1', metadata: { resourceVersion: '42', continue: 'abc' } });
    expect(page.items.length).toBe(2);
    expect([...page.items]).toEqual(list.items);
    expect(page.items.at(1)).toEqual(list.items[1]);
    expect(page.items.at(1)).not.toBe(page.items.at(1)); // parsed anew each time: nothing is cached
  });

  it('follows strings with escapes, brackets and multi-byte characters, whitespace, and items anywhere', () => {
    const items = [
      { s: 'a "quoted" } ] { [ text', t: 'back\\slash\\', u: 'ünïcødé ✓ 𝄞', n: [1, [2, [3]], { x: null }] },
      'a string item', 17, -1.5e3, true, null, [],
      { e: '\\"' },
    ];
    const text = `{ "items" : [ ${items.map((i) => JSON.stringify(i, null, 2)).join(' ,\n ')} ] ,\n "metadata" : { "resourceVersion" : "7" } }\n`;
    const page = parseListPage(bytes(text));
    expect([...page.items]).toEqual(items);
    expect(page.fields).toEqual({ metadata: { resourceVersion: '7' } });
  });

  it('takes empty, null and missing items as no items', () => {
    for (const text of ['{"items":[]}', '{"items": [ ] }', '{"items":null,"metadata":{}}', '{"metadata":{}}', '{}', ' { } ']) {
      const page = parseListPage(bytes(text));
      expect(page.items.length).toBe(0);
      expect([...page.items]).toEqual([]);
      expect(page.fields).not.toHaveProperty('items');
    }
  });

  it('throws SyntaxError on what is not a JSON object, or is cut short', () => {
    const bad = [
      '', '[]', '"x"', '{"items":[{"a":1}', '{"items":[{"a":1},', '{"items":[{"a":"x}]}', '{"items":[1 2]}',
      '{"metadata":{}', '{"metadata" {}}', '{metadata:{}}', '{"items":[]} x', '{"a":}',
    ];
    for (const text of bad) expect(() => parseListPage(bytes(text)), text).toThrow(SyntaxError);
    // An item the scan can delimit but JSON cannot parse fails when it is read.
    const page = parseListPage(bytes('{"items":[{"a":01}]}'));
    expect(() => page.items.at(0)).toThrow(SyntaxError);
  });

  it('release() frees an owned buffer at once and leaves a shared one alone', () => {
    const owned = bytes('{"items":[{"a":1}]}');
    const page = parseListPage(owned, { owned: true });
    expect(page.items.at(0)).toEqual({ a: 1 });
    page.items.release();
    expect(owned.buffer.detached).toBe(true);
    expect(() => page.items.at(0)).toThrow(/after release/);
    page.items.release(); // twice is fine

    // A view into a bigger buffer (a pooled Buffer) is never detached, even when called owned.
    const pooled = Buffer.from('xx{"items":[{"a":2}]}yy');
    const view = pooled.subarray(2, pooled.length - 2);
    const shared = parseListPage(view, { owned: true });
    expect(shared.items.at(0)).toEqual({ a: 2 });
    shared.items.release();
    expect(pooled.buffer.detached).toBe(false);
    expect(pooled.toString()).toContain('"a":2');

    const notOwned = bytes('{"items":[]}');
    parseListPage(notOwned).items.release();
    expect(notOwned.buffer.detached).toBe(false);
  });

  it('holds thousands of items without copying them', () => {
    const items = Array.from({ length: 5000 }, (_, i) => ({ metadata: { name: `svc-${i}`, namespace: 'ns' } }));
    const page = parseListPage(bytes(JSON.stringify({ metadata: { resourceVersion: '1' }, items })));
    expect(page.items.length).toBe(5000);
    let n = 0;
    for (const item of page.items) expect((item as { metadata: { name: string } }).metadata.name).toBe(`svc-${n++}`);
    expect(n).toBe(5000);
  });
});
