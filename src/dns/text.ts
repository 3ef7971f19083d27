// Zone-file presentation of records: tests are written as "svc.ns.svc.cluster.local. 5 IN A 10.0.0.1".
import { type RR, Type, className, typeName, typeFromName, Class } from './types.ts';

export function rrToString(rr: RR): string {
  const head = `${rr.name}\t${rr.ttl}\t${className(rr.class)}\t${typeName(rr.type)}\t`;
  const d = rr.data as unknown;
  if (d instanceof Uint8Array) return head + `\\# ${d.length} ${Buffer.from(d).toString('hex')}`;
  switch (rr.type) {
    case Type.A: case Type.AAAA: case Type.NS: case Type.CNAME: case Type.PTR:
      return head + (d as string);
    case Type.SRV: {
      const s = d as { priority: number; weight: number; port: number; target: string };
      return head + `${s.priority} ${s.weight} ${s.port} ${s.target}`;
    }
    case Type.SOA: {
      const s = d as { mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number };
      return head + `${s.mname} ${s.rname} ${s.serial} ${s.refresh} ${s.retry} ${s.expire} ${s.minimum}`;
    }
    case Type.MX: {
      const m = d as { preference: number; exchange: string };
      return head + `${m.preference} ${m.exchange}`;
    }
    case Type.TXT:
      return head + (d as string[]).map((s) => JSON.stringify(s)).join(' ');
    default:
      return head + String(d);
  }
}

/** Parse one zone-file line: NAME TTL [CLASS] TYPE RDATA... (no $ORIGIN, names must be absolute). */
export function parseRR(line: string): RR {
  const tokens = line.match(/"(?:[^"\\]|\\.)*"|\S+/g);
  if (!tokens || tokens.length < 4) throw new Error(`bad RR '${line}'`);
  const name = tokens[0]!;
  const ttl = Number(tokens[1]);
  if (!Number.isInteger(ttl)) throw new Error(`bad TTL in '${line}'`);
  let i = 2;
  let cls: number = Class.IN;
  if (tokens[i]!.toUpperCase() in Class) cls = Class[tokens[i++]!.toUpperCase() as keyof typeof Class];
  const type = typeFromName(tokens[i++]!);
  if (type === undefined) throw new Error(`bad type in '${line}'`);
  const rd = tokens.slice(i);
  const base = { name, class: cls, ttl };
  switch (type) {
    case Type.A: case Type.AAAA:
      return { ...base, type, data: rd[0]! };
    case Type.NS: case Type.CNAME: case Type.PTR:
      return { ...base, type, data: rd[0]! };
    case Type.SRV:
      return { ...base, type, data: { priority: Number(rd[0]), weight: Number(rd[1]), port: Number(rd[2]), target: rd[3]! } };
    case Type.SOA:
      return { ...base, type, data: { mname: rd[0]!, rname: rd[1]!, serial: Number(rd[2]), refresh: Number(rd[3]), retry: Number(rd[4]), expire: Number(rd[5]), minimum: Number(rd[6]) } };
    case Type.MX:
      return { ...base, type, data: { preference: Number(rd[0]), exchange: rd[1]! } };
    case Type.TXT:
      return { ...base, type, data: rd.map((t) => (t.startsWith('"') ? (JSON.parse(t) as string) : t)) };
    default:
      throw new Error(`rr(): type ${typeName(type)} not supported in '${line}'`);
  }
}
