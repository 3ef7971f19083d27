// The I/O floor: a Node UDP server that answers each datagram with itself (QR set) and does nothing
// else. Whatever clusterdns does per query costs on top of this.
import dgram from 'node:dgram';

const port = Number(process.argv[2] ?? 0);
const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
sock.on('message', (msg, rinfo) => {
  if (msg.length >= 3) msg[2]! |= 0x80;
  sock.send(msg, rinfo.port, rinfo.address);
});
sock.bind(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${sock.address().port}\n`);
});
process.on('SIGTERM', () => { sock.close(); process.exit(0); });
