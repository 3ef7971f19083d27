// client-node.ts loads ListWatch and Watch without the generated models and without npm undici by
// stubbing one import of cache.js and the undici imports of watch.js and the generated fetch library.
// These tests pin what that relies on, so a client-node upgrade that changes it fails here, not DNS.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startKubeApi } from '../../test/kubeapi/server.ts';
import { namespace, service } from '../../test/kubeapi/objects.ts';
import {
  isCacheSerializerImport, isUndiciFetchImport, ListWatch, serializerStubbed, serializerStubURL, undiciStubbed, undiciStubbedImports, Watch,
} from './client-node.ts';

const dist = (f: string) => fileURLToPath(import.meta.resolve(`@kubernetes/client-node/dist/${f}`));
const cacheJs = dist('cache.js');
const watchJs = dist('watch.js');
const isomorphicFetchJs = dist('gen/http/isomorphic-fetch.js');

describe('client-node informer without the models', () => {
  it('loads ListWatch and Watch with the serializer and undici stubs in place', () => {
    expect(typeof ListWatch).toBe('function');
    expect(typeof Watch).toBe('function');
    expect(serializerStubbed).toBe(true);
    expect(undiciStubbed).toBe(true);
    expect(undiciStubbedImports).toEqual(['gen/http/isomorphic-fetch.js', 'watch.js']);
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

describe('client-node Watch without npm undici', () => {
  it('watch.js and the generated fetch library import only fetch from undici', () => {
    for (const file of [watchJs, isomorphicFetchJs]) {
      const imports = readFileSync(file, 'utf8').match(/^import .* from 'undici';$/gm);
      expect(imports, file).toEqual(["import { fetch } from 'undici';"]);
    }
  });

  it('watch.js uses of fetch exactly what transport.ts implements', () => {
    const src = readFileSync(watchJs, 'utf8');
    // One call: GET, the context's headers and dispatcher (ours, from applySecurityAuthentication), a signal.
    expect(src.match(/\bfetch\(/g)).toHaveLength(1);
    expect(src).toMatch(/= await fetch\(watchURL, \{\s*method: 'GET',\s*headers: ctx\.getHeaders\(\),\s*dispatcher: ctx\.getDispatcher\(\),\s*signal: controller\.signal,\s*\}\);/);
    // Of the response: status, statusText, and the body as a web stream handed to Readable.fromWeb.
    const uses = new Set(src.match(/\bresponse\.\w+/g));
    expect([...uses].sort()).toEqual(['response.body', 'response.status', 'response.statusText']);
    expect(src).toContain('Readable.fromWeb(response.body)');
    // The dispatcher comes from the context our ApiClient authenticated, and nowhere else.
    expect(src.match(/getDispatcher\(\)/g)).toHaveLength(1);
    expect(src).toMatch(/await this\.config\.applySecurityAuthentication\(ctx\);/);
  });

  it('the hook matches only the undici imports of watch.js and the generated fetch library', () => {
    expect(isUndiciFetchImport('undici', `file://${watchJs}`)).toBe(true);
    expect(isUndiciFetchImport('undici', `file://${isomorphicFetchJs}`)).toBe(true);
    expect(isUndiciFetchImport('undici', `file://${dist('config.js')}`)).toBe(false);
    expect(isUndiciFetchImport('undici', `file://${dist('health.js')}`)).toBe(false);
    expect(isUndiciFetchImport('./gen/http/http.js', `file://${watchJs}`)).toBe(false);
    expect(isUndiciFetchImport('undici', undefined)).toBe(false);
  });

  it('the API source syncs and watches without loading any of npm undici (a fresh node process)', async () => {
    expect(await syncInFreshProcess('')).toEqual({ namespaces: ['shop'], services: ['shop/web'], undiciStubbed: true, undici: [], cjs: [] });
  });

  it('where watch.js was loaded before the hook, Watch fetches with npm undici and an undici dispatcher', async () => {
    const r = await syncInFreshProcess("await import(require.resolve('@kubernetes/client-node/dist/watch.js'));");
    expect(r).toMatchObject({ namespaces: ['shop'], services: ['shop/web'], undiciStubbed: false });
    expect(r.cjs.length).toBeGreaterThan(0);
  });
});

/**
 * In a fresh node process (running `first`, which may use `require`, before our modules): the API
 * source against a test API server, synced and then given a watch event. Reports what it received,
 * whether watch.js got the undici stub, and every module under node_modules/undici/ that was resolved
 * or is in the CJS cache.
 */
async function syncInFreshProcess(first: string): Promise<{ namespaces: string[]; services: string[]; undiciStubbed: boolean; undici: string[]; cjs: string[] }> {
  const api = await startKubeApi({ token: null });
  try {
    api.add(namespace('shop'));
    const root = new URL('../../', import.meta.url).href;
    // The hook observes every resolution (import and require) in the process; the stub's short-circuit
    // answers for client-node's two undici imports come first and are not seen here.
    const script = `
      import { createRequire, registerHooks } from 'node:module';
      const undici = [];
      registerHooks({ resolve(s, c, next) { const r = next(s, c); if (r.url.includes('/node_modules/undici/')) undici.push(r.url); return r; } });
      const root = ${JSON.stringify(root)};
      const require = createRequire(root + 'package.json');
      ${first}
      const { startApiSource } = await import(root + 'plugins/kubernetes/source-api.ts');
      const { undiciStubbed } = await import(root + 'plugins/kubernetes/client-node.ts');
      const { RecordingSink } = await import(root + 'test/kubeapi/objects.ts');
      const { Metrics } = await import(root + 'src/metrics.ts');
      const { memoryLogger } = await import(root + 'src/log.ts');
      const sink = new RecordingSink();
      const src = startApiSource({ endpoint: ${JSON.stringify(api.url)}, watchPods: false }, sink, { log: memoryLogger(), metrics: new Metrics() });
      await src.synced;
      console.log('synced');
      while (!sink.services.has('shop/web')) await new Promise((r) => setTimeout(r, 10));
      const cjs = Object.keys(require.cache).filter((k) => k.includes('/node_modules/undici/'));
      console.log(JSON.stringify({ namespaces: sink.keys('Namespace'), services: sink.keys('Service'), undiciStubbed, undici, cjs }));
      await src.stop();
    `;
    const out = await new Promise<string>((resolve, reject) => {
      const child = execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 15_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(stdout);
      });
      // Once its watches are open, an event for the child to receive.
      child.stdout!.on('data', (d: Buffer) => {
        if (!d.toString().includes('synced')) return;
        void (async () => {
          for (let i = 0; api.watchCount < 3 && i < 300; i++) await new Promise((r) => setTimeout(r, 10));
          api.add(service('shop', 'web', { clusterIP: '10.96.0.5' }));
        })();
      });
    });
    return JSON.parse(out.trim().split('\n').at(-1)!) as Awaited<ReturnType<typeof syncInFreshProcess>>;
  } finally {
    await api.close();
  }
}
