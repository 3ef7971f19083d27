// Failure behaviour of the forwarding path with the real server: a timing-out upstream is skipped,
// all upstreams down gives SERVFAIL quickly, and cache serve_stale answers from expired entries.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode } from '../../src/dns/codec.ts';
import { Rcode, Type } from '../../src/dns/types.ts';
import { memoryLogger } from '../../src/log.ts';
import { startFromText, type Runtime } from '../../src/server/runtime.ts';
import { udpExchange } from '../client.ts';
import { queryBytes } from '../helpers.ts';
import { startUpstream, type Upstream } from '../upstream.ts';

describe('forward + cache under upstream failure', () => {
  let a: Upstream;
  let b: Upstream;
  let rt: Runtime;
  let port: number;
  const ask = async (name: string, timeoutMs = 8000) => {
    const t0 = Date.now();
    const r = await udpExchange(port, queryBytes(name, Type.A, { id: 77 }), { timeoutMs });
    return { msg: r ? decode(r) : undefined, ms: Date.now() - t0 };
  };

  beforeAll(async () => {
    a = await startUpstream((q) => ({ answer: [`${q.qname} 1 IN A 203.0.113.10`] }));
    b = await startUpstream((q) => ({ answer: [`${q.qname} 1 IN A 203.0.113.20`] }));
    rt = await startFromText(`.:0 {
  bind 127.0.0.1
  prometheus 127.0.0.1:0
  cache 1 {
    success 1000 1 1
    serve_stale 1h verify
  }
  forward . ${a.addr} ${b.addr} {
    policy sequential
    health_check 100ms
  }
}
`, { log: memoryLogger(), defaultPort: 0 });
    port = rt.listeners[0]!.udpPort;
  });
  afterAll(async () => {
    await rt?.stop();
    await a?.close().catch(() => undefined);
    await b?.close().catch(() => undefined);
  });

  it('answers from the first upstream while it is healthy', async () => {
    const { msg } = await ask('api.example.com.');
    expect(msg?.answer[0]?.data).toBe('203.0.113.10');
  });

  it('an upstream that times out is skipped and the next one answers', async () => {
    a.handle(() => ({ drop: true }));
    const { msg, ms } = await ask('slow.example.com.');
    expect(msg?.rcode).toBe(Rcode.NOERROR);
    expect(msg?.answer[0]?.data).toBe('203.0.113.20');
    expect(ms).toBeLessThan(5000);
  });

  it('with every upstream gone: SERVFAIL quickly for a new name, the stale answer for a cached one', async () => {
    await a.close();
    await b.close();
    const fresh = await ask('never-seen.example.com.');
    expect(fresh.msg?.rcode).toBe(Rcode.SERVFAIL);
    expect(fresh.ms).toBeLessThan(6000);
    await new Promise((r) => setTimeout(r, 1200)); // let api.example.com expire
    const stale = await ask('api.example.com.');
    expect(stale.msg?.rcode).toBe(Rcode.NOERROR);
    expect(stale.msg?.answer[0]?.data).toBe('203.0.113.10');
    const text = await rt.metrics.text();
    expect(text).toMatch(/coredns_cache_served_stale_total\{[^}]*\} [1-9]/);
  }, 20_000);
});
