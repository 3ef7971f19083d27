// A loopback upstream resolver for the benchmarks, run as its own process (pinned to the client core,
// so the server under test keeps core 0 to itself):
//
//   node test/bench/upstream.ts [ADDRESS] [PORT]     (default 127.0.0.1, port 53)
//
// Every A query gets 192.0.2.1 and every AAAA 2001:db8::1 (documentation ranges, TTL 300); any other
// type gets an empty NOERROR. Replies are built straight from the query's bytes (no codec), over UDP
// and TCP. Prints `listening ADDRESS PORT` when ready; on SIGUSR2 prints `count UDP TCP` (queries
// answered so far). Only the given loopback address is ever bound.
import dgram from 'node:dgram';
import net from 'node:net';

const address = process.argv[2] ?? '127.0.0.1';
const port = Number(process.argv[3] ?? 53);
if (!address.startsWith('127.')) {
  process.stderr.write(`upstream: refusing to bind ${address}: loopback only\n`);
  process.exit(2);
}

const TTL = 300;
const aData = [192, 0, 2, 1];
const aaaaData = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

let udpCount = 0;
let tcpCount = 0;

/** The reply to `q`, or undefined for something that is not a one-question query. */
function answer(q: Uint8Array): Uint8Array | undefined {
  if (q.length < 17 || (q[2]! & 0x80) !== 0 || q[4] !== 0 || q[5] !== 1) return undefined;
  let off = 12;
  while (off < q.length && q[off] !== 0) {
    if ((q[off]! & 0xc0) !== 0) return undefined;
    off += q[off]! + 1;
  }
  const qEnd = off + 5; // root label + type + class
  if (qEnd > q.length) return undefined;
  const type = (q[off + 1]! << 8) | q[off + 2]!;
  const data = type === 1 ? aData : type === 28 ? aaaaData : undefined;
  const out = new Uint8Array(qEnd + (data ? 12 + data.length : 0));
  out.set(q.subarray(0, qEnd));
  out[2] = 0x80 | (q[2]! & 0x79); // QR, keep opcode and RD
  out[3] = 0x80; // RA, NOERROR
  out[6] = 0; out[7] = data ? 1 : 0;
  out[8] = 0; out[9] = 0; out[10] = 0; out[11] = 0; // no authority, no additional (the query's OPT is dropped)
  if (data) {
    let o = qEnd;
    out[o++] = 0xc0; out[o++] = 12; // the question's name
    out[o++] = 0; out[o++] = type;
    out[o++] = 0; out[o++] = 1;
    out[o++] = (TTL >>> 24) & 255; out[o++] = (TTL >>> 16) & 255; out[o++] = (TTL >>> 8) & 255; out[o++] = TTL & 255;
    out[o++] = 0; out[o++] = data.length;
    out.set(data, o);
  }
  return out;
}

const udp = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
udp.on('message', (msg, rinfo) => {
  const r = answer(msg);
  if (!r) return;
  udpCount++;
  udp.send(r, rinfo.port, rinfo.address);
});

const tcp = net.createServer((sock) => {
  let buf: Buffer = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (buf.length < len + 2) break;
      const r = answer(buf.subarray(2, len + 2));
      buf = buf.subarray(len + 2);
      if (!r) continue;
      tcpCount++;
      const framed = Buffer.alloc(r.length + 2);
      framed.writeUInt16BE(r.length, 0);
      framed.set(r, 2);
      sock.write(framed);
    }
  });
  sock.on('error', () => sock.destroy());
});

function fail(err: Error): void {
  process.stderr.write(`upstream: ${err.message}\n`);
  process.exit(1);
}
udp.once('error', fail);
tcp.once('error', fail);
udp.bind(port, address, () => {
  tcp.listen(port, address, () => process.stdout.write(`listening ${address} ${port}\n`));
});
process.on('SIGUSR2', () => process.stdout.write(`count ${udpCount} ${tcpCount}\n`));
process.on('SIGTERM', () => process.exit(0));
