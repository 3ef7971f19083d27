import { type AddrRR, type Msg, type SrvRR, Type } from '../../src/dns/types.ts';
import type { Handler } from '../../src/plugin.ts';
import type { Request } from '../../src/request.ts';

/** The client's address without an IPv4-mapped prefix or an IPv6 zone. */
function clientAddress(addr: string): string {
  if (addr.startsWith('::ffff:') && addr.includes('.')) return addr.slice(7);
  const zone = addr.indexOf('%');
  return zone < 0 ? addr : addr.slice(0, zone);
}

/**
 * Answers every query, whatever its name and type, with an empty answer section and the client's
 * address (A or AAAA, owner: the query name) and port (SRV `_udp.`/`_tcp.` + name) in the additional
 * section; authoritative, TTL 0. Terminal: never calls next.
 */
export class Whoami implements Handler {
  readonly name = 'whoami';

  serveDNS(req: Request): Msg {
    const m = req.reply(0);
    m.flags.aa = true;
    const qname = req.qname;
    const cls = req.qclass;
    const ip = clientAddress(req.remoteAddress);
    const addr: AddrRR = { name: qname, type: ip.includes(':') ? Type.AAAA : Type.A, class: cls, ttl: 0, data: ip };
    const srv: SrvRR = {
      name: qname === '.' ? `_${req.proto}.` : `_${req.proto}.${qname}`,
      type: Type.SRV, class: cls, ttl: 0,
      data: { priority: 0, weight: 0, port: req.remotePort, target: '.' },
    };
    m.additional = [addr, srv];
    return m;
  }
}
