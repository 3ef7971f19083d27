// client-node.ts loads ListWatch without the generated models by stubbing one import of cache.js.
// These tests pin what that relies on, so a client-node upgrade that changes it fails here.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isCacheSerializerImport, ListWatch, serializerStubbed, serializerStubURL, Watch } from './client-node.ts';

const cacheJs = fileURLToPath(import.meta.resolve('@kubernetes/client-node/dist/cache.js'));

describe('client-node informer without the models', () => {
  it('loads ListWatch and Watch with the serializer stub in place', () => {
    expect(typeof ListWatch).toBe('function');
    expect(typeof Watch).toBe('function');
    expect(serializerStubbed).toBe(true);
  });

  it('cache.js uses its serializer only for selector strings', () => {
    const src = readFileSync(cacheJs, 'utf8');
    expect(src).toMatch(/^import \{ ObjectSerializer \} from '\.\/serializer\.js';$/m);
    const uses = src.match(/ObjectSerializer[^\n;]*/g) ?? [];
    // The import line, then only serialize(this.<x>Selector, 'string').
    expect(uses.slice(1).length).toBeGreaterThan(0);
    for (const u of uses.slice(1)) expect(u).toMatch(/^ObjectSerializer\.serialize\(this\.(label|field)Selector, 'string'\)$/);
  });

  it('the stub returns selector strings as they are, as the real serializer does, and refuses anything else', async () => {
    const { ObjectSerializer: stub } = await import(serializerStubURL) as { ObjectSerializer: { serialize(d: unknown, t: string): unknown } };
    const { ObjectSerializer: real } = await import('@kubernetes/client-node/dist/serializer.js');
    for (const sel of ['app=web', 'team in (shop),tier!=db', '', undefined]) {
      expect(stub.serialize(sel, 'string')).toBe(real.serialize(sel, 'string'));
    }
    expect(() => stub.serialize({ a: 1 }, 'V1Service')).toThrow(/serializer stub/);
    expect(() => stub.serialize(3, 'string')).toThrow(/serializer stub/);
  });

  it('the hook matches only cache.js importing ./serializer.js', () => {
    const parent = `file://${cacheJs}`;
    expect(isCacheSerializerImport('./serializer.js', parent)).toBe(true);
    expect(isCacheSerializerImport('./serializer.js', parent.replace('cache.js', 'index.js'))).toBe(false);
    expect(isCacheSerializerImport('./informer.js', parent)).toBe(false);
    expect(isCacheSerializerImport('./serializer.js', undefined)).toBe(false);
  });
});
