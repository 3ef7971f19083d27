import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Route = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

/**
 * One HTTP listener shared by the plugins that serve on its address (health, ready, prometheus).
 * Routes are swapped on reload while the socket stays open, so probes never see a refused connection.
 */
export class HttpMux {
  readonly addr: string;
  /**
   * Handlers per path, newest last: a reload's new instance routes on top of the old one, and when
   * either unregisters (old after a successful switch, new after a failed one) the other stays.
   */
  private readonly routes = new Map<string, Route[]>();
  private server: http.Server | undefined;

  constructor(addr: string) { this.addr = addr; }

  route(path: string, handler: Route): () => void {
    const list = this.routes.get(path) ?? [];
    list.push(handler);
    this.routes.set(path, list);
    return () => {
      const l = this.routes.get(path);
      if (!l) return;
      const i = l.lastIndexOf(handler);
      if (i >= 0) l.splice(i, 1);
      if (l.length === 0) this.routes.delete(path);
    };
  }

  get routeCount(): number { return this.routes.size; }

  async listen(): Promise<void> {
    if (this.server) return;
    const { host, port } = splitHostPort(this.addr);
    const server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      const h = this.routes.get(path)?.at(-1);
      if (!h) { res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n'); return; }
      Promise.resolve(h(req, res)).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(e) + '\n');
      });
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: host || undefined, port }, () => { server.off('error', reject); resolve(); });
    });
    this.server = server;
  }

  /** The bound port (useful with port 0 in tests). */
  get port(): number { return (this.server?.address() as AddressInfo | null)?.port ?? 0; }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** "host:port", ":port", "[::1]:port" → parts; a bare port or empty host means all addresses. */
export function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new Error(`invalid address '${addr}'`);
  return { host: m[1] ?? m[2] ?? '', port: Number(m[3]) };
}
