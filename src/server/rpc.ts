// Request/response over a worker_threads port (a Worker, parentPort or MessagePort), both ways: each
// side can call the other. Bodies go by structured clone; errors come back as their message.

/** What both Worker and MessagePort offer. */
export interface RpcPort {
  postMessage(value: unknown): void;
  on(event: 'message', listener: (value: unknown) => void): unknown;
  off(event: 'message', listener: (value: unknown) => void): unknown;
}

interface RpcRequest { rpc: 'req'; id: number; body: unknown }
interface RpcResponse { rpc: 'res'; id: number; ok: boolean; value?: unknown; error?: string }

export class RpcClosedError extends Error {
  constructor(what = 'rpc channel closed') { super(what); this.name = 'RpcClosedError'; }
}

export class Rpc {
  private readonly port: RpcPort;
  private readonly handle: (body: unknown) => unknown;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout | undefined }>();
  private nextId = 1;
  private closed = false;
  private readonly onMessage = (m: unknown): void => {
    const msg = m as RpcRequest | RpcResponse | null;
    if (!msg || typeof msg !== 'object') return;
    if (msg.rpc === 'req') this.answer(msg);
    else if (msg.rpc === 'res') this.settle(msg);
  };

  /** `handle` answers the other side's calls (a value, a promise, or a throw). */
  constructor(port: RpcPort, handle: (body: unknown) => unknown) {
    this.port = port;
    this.handle = handle;
    port.on('message', this.onMessage);
  }

  /** Calls waiting for an answer. */
  get inflight(): number { return this.pending.size; }

  /** Ask the other side; rejects after `timeoutMs` (0: never) or when the channel closes. */
  call(body: unknown, timeoutMs = 0): Promise<unknown> {
    if (this.closed) return Promise.reject(new RpcClosedError());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = timeoutMs > 0
        ? setTimeout(() => { this.pending.delete(id); reject(new Error(`no answer within ${timeoutMs} ms`)); }, timeoutMs)
        : undefined;
      timer?.unref();
      this.pending.set(id, { resolve, reject, timer });
      this.port.postMessage({ rpc: 'req', id, body } satisfies RpcRequest);
    });
  }

  /** Stop answering and fail every call still waiting. */
  close(why = 'rpc channel closed'): void {
    if (this.closed) return;
    this.closed = true;
    this.port.off('message', this.onMessage);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new RpcClosedError(why));
    }
  }

  private answer(req: RpcRequest): void {
    const reply = (ok: boolean, value: unknown) => {
      if (this.closed) return;
      const res: RpcResponse = ok ? { rpc: 'res', id: req.id, ok, value }
        : { rpc: 'res', id: req.id, ok, error: value instanceof Error ? value.message : String(value) };
      try {
        this.port.postMessage(res);
      } catch (e) {
        // An answer that cannot be cloned is a bug on this side: say so rather than leave the caller waiting.
        this.port.postMessage({ rpc: 'res', id: req.id, ok: false, error: `unsendable answer: ${(e as Error).message}` } satisfies RpcResponse);
      }
    };
    let r: unknown;
    try {
      r = this.handle(req.body);
    } catch (e) {
      reply(false, e);
      return;
    }
    if (r instanceof Promise) r.then((v: unknown) => reply(true, v), (e: unknown) => reply(false, e));
    else reply(true, r);
  }

  private settle(res: RpcResponse): void {
    const p = this.pending.get(res.id);
    if (!p) return;
    this.pending.delete(res.id);
    clearTimeout(p.timer);
    if (res.ok) p.resolve(res.value);
    else p.reject(new Error(res.error ?? 'remote call failed'));
  }
}
