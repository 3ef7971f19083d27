// Overload over real UDP on loopback: queries the kernel drops because the server's receive buffer is
// full are counted (coredns_dns_udp_receive_drops_total), none vanishes silently, and the server
// still answers afterwards.
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { decode } from '../../src/dns/codec.ts';
import { Type } from '../../src/dns/types.ts';
import type { Handler } from '../../src/plugin.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { memoryLogger } from '../../src/log.ts';
import { Runtime } from '../../src/server/runtime.ts';
import { coreSysctl, readUdpTotals } from '../../src/server/udpstats.ts';
import { WorkerPool } from '../../src/server/workers.ts';
import { udpExchange } from '../client.ts';
import { queryBytes } from '../helpers.ts';
import { startTest } from './harness.ts';
import { pickPort } from '../ports.ts';

const answer: Handler = {
  name: 'static',
  serveDNS: (req) => {
    const m = req.reply();
    m.answer.push({ name: req.qname, type: Type.A, class: 1, ttl: 5, data: '10.0.0.1' });
    return m;
  },
};

/** Sum of a metric's samples in a Prometheus text body (every label set). */
function metric(text: string, name: string): number {
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    seen = true;
  }
  return seen ? sum : NaN;
}

let stops: Array<() => Promise<void>> = [];
afterEach(async () => { for (const s of stops) await s(); stops = []; });

const linux = process.platform === 'linux';

describe('UDP overload', () => {
  it.runIf(linux)('counts the kernel\'s drops on a full receive buffer, loses nothing silently, keeps answering', async () => {
    // A small receive buffer (the kernel grants twice this, a few dozen datagrams' worth).
    const s = await startTest([{ zones: ['.'], handlers: [answer], setup: (env) => env.enableServerMetrics() }],
      { listener: { udpBufferBytes: 16 * 1024 } });
    stops.push(s.stop);
    const before = await s.rt.metrics.text();
    expect(metric(before, 'coredns_dns_udp_receive_drops_total')).toBe(0);
    const rcvbuf = metric(before, 'coredns_dns_udp_receive_buffer_bytes');
    expect(rcvbuf).toBeGreaterThanOrEqual(2 * 16 * 1024);
    expect(rcvbuf).toBeLessThan(1 << 20);
    expect(s.log.lines.some((l) => /socket buffers: receive 32 KiB/.test(l))).toBe(true);

    // Every send below is queued before this thread (which is also the server's) reads anything: the
    // server's buffer overflows for sure, whatever the machine's speed.
    const client = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
    const n = 2000;
    const q = queryBytes('flood.example.', Type.A);
    try {
      for (let i = 0; i < n; i++) client.send(q, s.port, '127.0.0.1');
      // Every query is either answered (counted in requests) or dropped by the kernel (counted in drops).
      let requests = 0;
      let drops = 0;
      for (let i = 0; i < 200; i++) {
        await new Promise((r) => setTimeout(r, 25));
        const text = await s.rt.metrics.text();
        requests = metric(text, 'coredns_dns_requests_total');
        drops = metric(text, 'coredns_dns_udp_receive_drops_total');
        if (requests + drops >= n) break;
      }
      expect(drops).toBeGreaterThan(0);
      expect(requests).toBeGreaterThan(0);
      expect(requests + drops).toBe(n);
    } finally {
      client.close();
    }
    const r = await udpExchange(s.port, queryBytes('after.example.', Type.A));
    expect(decode(r!).answer[0]!.data).toBe('10.0.0.1');
    // Drops never go back down.
    const after = await s.rt.metrics.text();
    expect(metric(after, 'coredns_dns_udp_receive_drops_total')).toBeGreaterThan(0);
    expect(metric(after, 'coredns_dns_udp_receive_queue_bytes')).toBe(0);
  });

  it.runIf(linux && coreSysctl('rmem_max') < 256 << 20)('warns when the kernel clamps the buffer asked for', async () => {
    const asked = 2 * Math.max(coreSysctl('rmem_max'), coreSysctl('wmem_max'));
    const s = await startTest([{ zones: ['.'], handlers: [answer] }], { listener: { udpBufferBytes: asked } });
    stops.push(s.stop);
    expect(s.log.lines.some((l) => l.includes('[WARNING]') && /clamped the receive buffer: asked \d+ KiB, granted \d+ KiB \(net\.core\.rmem_max = \d+\)/.test(l))).toBe(true);
    const r = await udpExchange(s.port, queryBytes('clamped.example.', Type.A));
    expect(decode(r!).answer).toHaveLength(1);
  });

  it.runIf(linux)('with workers: main counts every worker\'s socket; the buffer size is not summed', async () => {
    const log = memoryLogger();
    const pool = new WorkerPool({ count: 2, log, defaultPort: 53, drainMs: 200, listener: { udpBufferBytes: 64 * 1024 }, onWorkerExit: () => undefined });
    const rt = new Runtime({ log, defaultPort: 53, role: 'main', dataPlane: pool, newLink: pool.newLink });
    rt.metrics.addRemote(() => pool.collect());
    const p = pickPort();
    await rt.start(rt.plan(parseCorefile(`.:${p} {\n  bind 127.0.0.1\n  prometheus 127.0.0.1:0\n  whoami\n}\n`, { file: 'Corefile' })));
    stops.push(() => rt.stop());
    expect(readUdpTotals([{ host: '127.0.0.1', port: p }])[0]!.sockets).toBe(2);
    const text = await rt.metrics.text();
    expect(text).toContain(`coredns_dns_udp_receive_drops_total{server="dns://127.0.0.1:${p}"} 0`);
    expect(metric(text, 'coredns_dns_udp_receive_buffer_bytes')).toBe(128 * 1024);
  });
});
