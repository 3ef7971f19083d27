// Build a query's bytes (for internal queries: loop's probe, forward's health checks, tests).

function pushName(out: number[], name: string): void {
  if (name !== '.' && name !== '') {
    for (const label of name.replace(/\.$/, '').split('.')) {
      const b = Buffer.from(label, 'latin1');
      if (b.length === 0 || b.length > 63) throw new Error(`invalid label in '${name}'`);
      out.push(b.length, ...b);
    }
  }
  out.push(0);
}

export interface BuildQueryOpts {
  id?: number;
  rd?: boolean;
  qclass?: number;
  edns?: { udpSize: number; do?: boolean } | null;
}

export function buildQuery(name: string, type: number, o: BuildQueryOpts = {}): Uint8Array {
  const id = o.id ?? Math.floor(Math.random() * 0x10000);
  const flags = (o.rd ?? true) ? 0x0100 : 0;
  const out = [id >> 8, id & 0xff, flags >> 8, flags & 0xff, 0, 1, 0, 0, 0, 0, 0, o.edns ? 1 : 0];
  pushName(out, name);
  const cls = o.qclass ?? 1;
  out.push(type >> 8, type & 0xff, cls >> 8, cls & 0xff);
  if (o.edns) out.push(0, 0, 41, o.edns.udpSize >> 8, o.edns.udpSize & 0xff, 0, 0, o.edns.do ? 0x80 : 0, 0, 0, 0);
  return Uint8Array.from(out);
}
