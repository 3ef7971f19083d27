import { definePlugin, type Handler, type Next, type Reply } from '../../src/plugin.ts';
import type { Request } from '../../src/request.ts';

export interface BufsizeConfig {
  /** Largest UDP reply to send, whatever the client advertises. */
  size: number;
}

/** DNS Flag Day 2020's recommendation: fits a 1280-byte IPv6 MTU without fragmenting. */
export const DEFAULT_BUFSIZE = 1232;
/** RFC 6891's bounds for an EDNS0 UDP payload size. */
export const MIN_BUFSIZE = 512;
export const MAX_BUFSIZE = 4096;

/** Lowers the request's UDP size limit, then passes it on. */
export class Bufsize implements Handler {
  readonly name = 'bufsize';
  readonly memo = true;
  readonly size: number;
  constructor(size: number) { this.size = size; }
  serveDNS(req: Request, next: Next): Reply {
    req.limitSize(this.size);
    return next(req);
  }
}

/** bufsize: cap the UDP reply size clients may ask for, to stay clear of IP fragmentation. */
export const plugin = definePlugin<BufsizeConfig>({
  name: 'bufsize',
  parse(c) {
    c.expectArgs(0, 1);
    c.noBlock();
    const tok = c.argTokens[0];
    return { size: tok ? c.int(tok, MIN_BUFSIZE, MAX_BUFSIZE) : DEFAULT_BUFSIZE };
  },
  setup(cfg) {
    return new Bufsize(cfg.size);
  },
});
