// A worker thread of `-workers N`: builds the plugin chains of the configuration main sends, listens
// on every DNS address with SO_REUSEPORT, and answers main's control requests (start, two-phase
// reload, stop, metrics). It opens no HTTP listener: main serves health, readiness and metrics.
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../log.ts';
import type { PluginLink } from '../plugin.ts';
import { Rpc, type RpcPort } from './rpc.ts';
import { type Instance, Runtime } from './runtime.ts';
import type { CallRequest, ControlRequest, WorkerInit, WorkerMetrics } from './workers.ts';

const init = workerData as WorkerInit;
const port = parentPort as RpcPort | null;
if (!port) throw new Error('worker-main.ts runs as a worker thread');

const log = createLogger();
const rt = new Runtime({
  log, defaultPort: init.defaultPort, role: 'worker', drainMs: init.drainMs,
  ...(init.maxUdpSize !== undefined ? { maxUdpSize: init.maxUdpSize } : {}),
  ...(init.memoEntries !== undefined ? { memoEntries: init.memoEntries } : {}),
  listener: { ...init.listener, reusePort: true },
});
let prepared: Instance | undefined;

/** The worker side of one configuration's link: calls name the generation they belong to. */
function linkFor(gen: number, shared: Record<string, SharedArrayBuffer | null>): PluginLink {
  return {
    serve: () => { throw new Error('a worker offers no services'); },
    connect: (key) => {
      if (!(key in shared)) return undefined;
      return {
        shared: shared[key] ?? undefined,
        call: (body) => rpc.call({ op: 'call', gen, key, body } satisfies CallRequest, init.callTimeoutMs),
      };
    },
  };
}

async function control(req: ControlRequest): Promise<unknown> {
  switch (req.op) {
    case 'start':
      await rt.start(rt.plan(req.corefile), linkFor(req.gen, req.shared));
      return null;
    case 'prepare':
      if (prepared) await rt.discard(prepared);
      prepared = await rt.prepare(rt.plan(req.corefile), linkFor(req.gen, req.shared));
      return null;
    case 'commit': {
      const inst = prepared;
      prepared = undefined;
      if (!inst) throw new Error('nothing prepared');
      await rt.commit(inst);
      return null;
    }
    case 'abort':
      if (prepared) await rt.discard(prepared);
      prepared = undefined;
      return null;
    case 'stop':
      await rt.stop();
      return null;
    case 'metrics':
      return { metrics: await rt.metrics.registry.getMetricsAsJSON() as unknown as WorkerMetrics['metrics'], heapUsed: process.memoryUsage().heapUsed } satisfies WorkerMetrics;
  }
}

const rpc = new Rpc(port, (body) => control(body as ControlRequest));

// As in main: an escaped rejection is a bug to log and count, not a reason to stop answering.
process.on('unhandledRejection', (reason) => {
  rt.panics.inc();
  log.error(`worker ${init.index}: unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}`);
});
