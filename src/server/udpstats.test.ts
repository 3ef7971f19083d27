import dgram from 'node:dgram';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MonotonicTotal, canonicalAddress, ownSocketInodes, parseProcNetUdp, readUdpTotals, servesAddress } from './udpstats.ts';

// Lines as a little-endian Linux 6.x writes them (copied from /proc/net/udp and /proc/net/udp6).
const udp4 = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            
  576: 00000000:C384 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1244688 2 00000000b503e65a 0       
 2003: 0100007F:0035 00000000:0000 07 00000000:00012C00 00:00000000 00000000     0        0 1243651 2 000000007594c4b4 4711    
`;
const udp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 6835: 00000000000000000000000001000000:DBF7 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1248957 2 000000007af37587 3
  100: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 07 00000000:00000300 00:00000000 00000000     0        0 1248958 2 000000007af37588 12
`;

describe('parseProcNetUdp', () => {
  it('reads address, port, receive queue, inode and drops (IPv4)', () => {
    expect(parseProcNetUdp(udp4, true)).toEqual([
      { localAddress: '0.0.0.0', localPort: 0xc384, rxQueue: 0, inode: 1244688, drops: 0 },
      { localAddress: '127.0.0.1', localPort: 53, rxQueue: 0x12c00, inode: 1243651, drops: 4711 },
    ]);
  });

  it('reads IPv6 addresses word by word in host byte order', () => {
    const rows = parseProcNetUdp(udp6, true);
    expect(rows.map((r) => [r.localAddress, r.localPort, r.rxQueue, r.inode, r.drops])).toEqual([
      ['::1', 0xdbf7, 0, 1248957, 3],
      ['::', 53, 0x300, 1248958, 12],
    ]);
  });

  it('reads a big-endian kernel\'s words as they are', () => {
    const be = udp4.replace('0100007F:0035', '7F000001:0035');
    expect(parseProcNetUdp(be, false)[1]!.localAddress).toBe('127.0.0.1');
  });

  it('skips the header, blank and malformed lines', () => {
    expect(parseProcNetUdp('garbage\n\n 1: 0100007F:0035 short\n', true)).toEqual([]);
  });
});

describe('servesAddress', () => {
  const sock = (localAddress: string, localPort = 53) => ({ localAddress, localPort, rxQueue: 0, inode: 1, drops: 0 });
  it('matches the port and the bound address; host "" is a wildcard socket', () => {
    expect(servesAddress(sock('127.0.0.1'), { host: '127.0.0.1', port: 53 })).toBe(true);
    expect(servesAddress(sock('127.0.0.1', 54), { host: '127.0.0.1', port: 53 })).toBe(false);
    expect(servesAddress(sock('127.0.0.2'), { host: '127.0.0.1', port: 53 })).toBe(false);
    expect(servesAddress(sock('::'), { host: '', port: 53 })).toBe(true);
    expect(servesAddress(sock('0.0.0.0'), { host: '', port: 53 })).toBe(true);
    expect(servesAddress(sock('127.0.0.1'), { host: '', port: 53 })).toBe(false);
    expect(servesAddress(sock('fd00::1'), { host: 'FD00:0:0::1', port: 53 })).toBe(true);
  });
  it('canonicalAddress compresses IPv6 and leaves IPv4 alone', () => {
    expect(canonicalAddress('0:0:0:0:0:0:0:1')).toBe('::1');
    expect(canonicalAddress('10.0.0.1')).toBe('10.0.0.1');
  });
});

describe('readUdpTotals', () => {
  it('sums only this process\'s sockets on the address (fixture /proc)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clusterdns-udpstats-'));
    try {
      const net = join(dir, 'net');
      const fd = join(dir, 'fd');
      mkdirSync(net);
      mkdirSync(fd);
      // Two sockets on 127.0.0.1:53 (two workers), one of them another process's.
      writeFileSync(join(net, 'udp'), udp4 + ' 2004: 0100007F:0035 00000000:0000 07 00000000:00000100 00:00000000 00000000     0        0 999 2 0 100\n');
      writeFileSync(join(net, 'udp6'), udp6);
      symlinkSync('socket:[1243651]', join(fd, '3'));
      symlinkSync('socket:[1248958]', join(fd, '4'));
      symlinkSync('/dev/null', join(fd, '5'));
      expect([...ownSocketInodes(fd)].sort()).toEqual([1243651, 1248958]);
      expect(readUdpTotals([{ host: '127.0.0.1', port: 53 }, { host: '', port: 53 }, { host: '127.0.0.1', port: 54 }], { procNet: net, fdDir: fd })).toEqual([
        { sockets: 1, drops: 4711, rxQueue: 0x12c00 },
        { sockets: 1, drops: 12, rxQueue: 0x300 },
        { sockets: 0, drops: 0, rxQueue: 0 },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(process.platform === 'linux')('finds a real socket of this process', async () => {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    try {
      expect(readUdpTotals([{ host: '127.0.0.1', port: s.address().port }])).toEqual([{ sockets: 1, drops: 0, rxQueue: 0 }]);
    } finally {
      s.close();
    }
  });
});

describe('MonotonicTotal', () => {
  it('never goes back when the source does (a socket closed)', () => {
    const t = new MonotonicTotal();
    expect(t.update(5)).toBe(5);
    expect(t.update(7)).toBe(7);
    expect(t.update(0)).toBe(7);
    expect(t.update(2)).toBe(9);
  });
});
