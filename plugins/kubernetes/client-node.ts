// The two pieces of @kubernetes/client-node the API source runs on — ListWatch (dist/cache.js, the
// informer) and Watch (dist/watch.js) — loaded without the ~900 generated model classes and without
// npm undici.
//
// While they load, a synchronous module hook (Node's module.registerHooks, deregistered right after)
// resolves exactly two kinds of import to stubs:
//
// * './serializer.js' from dist/cache.js. It imports the generated ObjectSerializer and with it every
//   model: ~12 MiB of RSS, ~6 MiB of V8 heap and ~0.25 s at startup (docs/performance.md), for one use:
//   ListWatch passes its label and field selectors through `ObjectSerializer.serialize(selector,
//   'string')`, which returns a string as it is. The stub does the same for strings and throws for
//   anything else.
// * 'undici' from dist/watch.js and dist/gen/http/isomorphic-fetch.js (which http.js, loaded by
//   watch.js for RequestContext, re-exports; we never call it). Both import only `fetch`. npm undici
//   is ~13 MiB of RSS in the server, for what is one GET per watch. The stub's fetch is installed below:
//   transport.ts's dispatchingFetch, which serves requests whose dispatcher is our Transport (what
//   ApiClient sets) and passes anything else — client-node's KubeConfig dispatchers — to the real
//   undici, loaded only then.
//
// So a client-node release that starts using either differently fails loudly, and client-node.test.ts
// pins what the stubs rely on (the imports and every use in cache.js and watch.js). Every line of
// ListWatch and Watch that runs is client-node's own. Where registerHooks is missing, or cache.js or
// watch.js was loaded earlier by someone else, the real modules are used: same behaviour, more memory
// (ApiClient then gives Watch an npm undici dispatcher: `undiciStubbed`).
import * as nodeModule from 'node:module';
import type * as CacheModule from '@kubernetes/client-node/dist/cache.js';
import type * as WatchModule from '@kubernetes/client-node/dist/watch.js';
import type { KubernetesObject } from '@kubernetes/client-node/dist/types.js';
import { dispatchingFetch, type FetchLike } from './transport.ts';

const serializerStubSource = `export class ObjectSerializer {
  static serialize(data, type) {
    if (type !== 'string' || (data !== undefined && typeof data !== 'string')) {
      throw new Error('clusterdns: client-node serialized a ' + type + ' through the serializer stub of plugins/kubernetes/client-node.ts; it no longer fits this client-node');
    }
    return data;
  }
}
`;
export const serializerStubURL = `data:text/javascript,${encodeURIComponent(serializerStubSource)}`;

// Only `fetch`: an import of anything else from 'undici' fails to link, at load.
const undiciStubSource = `let impl;
export function fetch(input, init) {
  if (impl === undefined) throw new Error('clusterdns: client-node fetched before the undici stub of plugins/kubernetes/client-node.ts was installed');
  return impl(input, init);
}
export function install(f) { impl = f; }
`;
export const undiciStubURL = `data:text/javascript,${encodeURIComponent(undiciStubSource)}`;

const clientNodeDist = /\/@kubernetes\/client-node\/dist\//;

/** Is this import client-node's cache.js importing its serializer? */
export function isCacheSerializerImport(specifier: string, parentURL: string | undefined): boolean {
  return specifier === './serializer.js' && parentURL !== undefined && /\/@kubernetes\/client-node\/dist\/cache\.js$/.test(parentURL);
}

/** Is this import client-node's watch.js (or the generated fetch library http.js re-exports) importing undici? */
export function isUndiciFetchImport(specifier: string, parentURL: string | undefined): boolean {
  return specifier === 'undici' && parentURL !== undefined && clientNodeDist.test(parentURL) &&
    /\/dist\/(watch|gen\/http\/isomorphic-fetch)\.js$/.test(parentURL);
}

interface Loaded {
  cache: typeof CacheModule;
  watch: typeof WatchModule;
  serializerStubbed: boolean;
  undiciStubbed: boolean;
  undiciStubbedImports: string[];
}

async function load(): Promise<Loaded> {
  const register = (nodeModule as { registerHooks?: typeof nodeModule.registerHooks }).registerHooks;
  const importBoth = async () => ({
    cache: await import('@kubernetes/client-node/dist/cache.js'),
    watch: await import('@kubernetes/client-node/dist/watch.js'),
  });
  if (typeof register !== 'function') return { ...await importBoth(), serializerStubbed: false, undiciStubbed: false, undiciStubbedImports: [] };
  let serializerStubbed = false;
  // Which of the two undici imports were stubbed (one left to the real module loads all of undici).
  const undiciImporters = new Set<string>();
  const hooks = register({
    resolve(specifier, context, nextResolve) {
      if (isCacheSerializerImport(specifier, context.parentURL)) {
        serializerStubbed = true;
        return { url: serializerStubURL, format: 'module', shortCircuit: true };
      }
      if (isUndiciFetchImport(specifier, context.parentURL)) {
        undiciImporters.add(context.parentURL!.replace(/^.*\/dist\//, ''));
        return { url: undiciStubURL, format: 'module', shortCircuit: true };
      }
      return nextResolve(specifier, context);
    },
  });
  let loaded: Awaited<ReturnType<typeof importBoth>>;
  try {
    loaded = await importBoth();
  } finally {
    hooks.deregister();
  }
  const undiciStubbed = undiciImporters.has('watch.js');
  if (undiciImporters.size > 0) {
    const stub = await import(undiciStubURL) as { install(f: FetchLike): void };
    stub.install(dispatchingFetch);
  }
  return { ...loaded, serializerStubbed, undiciStubbed, undiciStubbedImports: [...undiciImporters].sort() };
}

const loaded = await load();

export const ListWatch: typeof CacheModule.ListWatch = loaded.cache.ListWatch;
export type ListWatch<T extends KubernetesObject> = CacheModule.ListWatch<T>;
export const Watch: typeof WatchModule.Watch = loaded.watch.Watch;
export type Watch = WatchModule.Watch;
/** Whether cache.js runs on the serializer stub (false: the full model set is loaded). */
export const serializerStubbed = loaded.serializerStubbed;
/** Whether watch.js fetches through the undici stub (false: it fetches with npm undici, which needs an undici dispatcher). */
export const undiciStubbed = loaded.undiciStubbed;
/** The client-node modules whose undici import got the stub, relative to dist/. */
export const undiciStubbedImports: readonly string[] = loaded.undiciStubbedImports;
