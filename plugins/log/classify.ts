// Response classes as CoreDNS's plugin/pkg/response sorts them (typify, then classify).
import { type Msg, Opcode, Rcode, Type } from '../../src/dns/types.ts';

export type ResponseClass = 'success' | 'denial' | 'error';

/**
 * success: an answer, a referral, or an empty NOERROR; denial: NXDOMAIN or NODATA (with an SOA in the
 * authority section, or an A/AAAA answer holding only other types); error: everything else, including
 * SERVFAIL, REFUSED, NXDOMAIN without an SOA, transfers and updates.
 */
export function classify(m: Msg): ResponseClass {
  if (m.opcode === Opcode.UPDATE || m.opcode === Opcode.NOTIFY) return 'error';
  const qtype = m.question[0]?.type;
  if (qtype === Type.AXFR || qtype === Type.IXFR) return 'error';
  if (m.answer.length > 0 && m.rcode === Rcode.NOERROR) {
    if (qtype === Type.A || qtype === Type.AAAA) {
      // An address query answered with only a CNAME chain is a NODATA in CoreDNS's eyes.
      return m.answer.some((r) => r.type === qtype) ? 'success' : 'denial';
    }
    return 'success';
  }
  const soa = m.authority.some((r) => r.type === Type.SOA);
  if (soa && (m.rcode === Rcode.NOERROR || m.rcode === Rcode.NXDOMAIN)) return 'denial';
  // A referral (NS in authority) and an empty NOERROR both count as success.
  return m.rcode === Rcode.NOERROR ? 'success' : 'error';
}
