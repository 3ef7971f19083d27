// The two pieces of @kubernetes/client-node the API source runs on — ListWatch (dist/cache.js, the
// informer) and Watch (dist/watch.js) — loaded without the ~900 generated model classes.
//
// cache.js imports dist/serializer.js, which imports the generated ObjectSerializer and with it every
// model: ~12 MiB of RSS, ~6 MiB of V8 heap and ~0.25 s at startup (docs/performance.md), for one use:
// ListWatch passes its label and field selectors through `ObjectSerializer.serialize(selector, 'string')`,
// which returns a string as it is. So, while cache.js loads, a synchronous module hook (Node's
// module.registerHooks, deregistered right after) resolves exactly that import — './serializer.js'
// from client-node's dist/cache.js — to a stub that does the same for strings and throws for anything
// else, so a client-node release that starts using it differently fails loudly (client-node.test.ts
// also checks cache.js's source). Every line of ListWatch and Watch that runs is client-node's own.
// Where registerHooks is missing, or cache.js was loaded earlier by someone else, the real serializer
// is used: same behaviour, more memory.
import * as nodeModule from 'node:module';
import type * as CacheModule from '@kubernetes/client-node/dist/cache.js';
import type { KubernetesObject } from '@kubernetes/client-node/dist/types.js';

export { Watch } from '@kubernetes/client-node/dist/watch.js';

const stubSource = `export class ObjectSerializer {
  static serialize(data, type) {
    if (type !== 'string' || (data !== undefined && typeof data !== 'string')) {
      throw new Error('clusterdns: client-node serialized a ' + type + ' through the serializer stub of plugins/kubernetes/client-node.ts; it no longer fits this client-node');
    }
    return data;
  }
}
`;
export const serializerStubURL = `data:text/javascript,${encodeURIComponent(stubSource)}`;

/** Is this import client-node's cache.js importing its serializer? */
export function isCacheSerializerImport(specifier: string, parentURL: string | undefined): boolean {
  return specifier === './serializer.js' && parentURL !== undefined && /\/@kubernetes\/client-node\/dist\/cache\.js$/.test(parentURL);
}

async function loadInformer(): Promise<{ cache: typeof CacheModule; stubbed: boolean }> {
  const register = (nodeModule as { registerHooks?: typeof nodeModule.registerHooks }).registerHooks;
  if (typeof register !== 'function') return { cache: await import('@kubernetes/client-node/dist/cache.js'), stubbed: false };
  let stubbed = false;
  const hooks = register({
    resolve(specifier, context, nextResolve) {
      if (isCacheSerializerImport(specifier, context.parentURL)) {
        stubbed = true;
        return { url: serializerStubURL, format: 'module', shortCircuit: true };
      }
      return nextResolve(specifier, context);
    },
  });
  try {
    return { cache: await import('@kubernetes/client-node/dist/cache.js'), stubbed };
  } finally {
    hooks.deregister();
  }
}

const informer = await loadInformer();

export const ListWatch: typeof CacheModule.ListWatch = informer.cache.ListWatch;
export type ListWatch<T extends KubernetesObject> = CacheModule.ListWatch<T>;
/** Whether cache.js runs on the serializer stub (false: the full model set is loaded). */
export const serializerStubbed = informer.stubbed;
