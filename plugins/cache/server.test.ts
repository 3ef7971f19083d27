// The cache behind a real server on loopback: cached answers age, and every client gets its own ID
// and letter case back from the shared prebuilt bytes.
import { afterEach, describe, expect, it } from 'vitest';
import { decode } from '../../src/dns/codec.ts';
import { Rcode, Type } from '../../src/dns/types.ts';
import type { Handler } from '../../src/plugin.ts';
import { tcpExchange, udpExchange } from '../../test/client.ts';
import { queryBytes, sortAndCheck } from '../../test/helpers.ts';
import { startTest } from '../../test/server/harness.ts';
import { Cache, defaultConfig } from './index.ts';

let stop: (() => Promise<void>) | undefined;
afterEach(async () => { await stop?.(); stop = undefined; });

describe('cache: through the server', () => {
  it('serves a cached answer with a falling TTL and each client’s ID and case', async () => {
    const clock = { t: 5_000_000 };
    const cache = new Cache(defaultConfig(['.']), { now: () => clock.t });
    let calls = 0;
    const backend: Handler = {
      name: 'backend',
      serveDNS(req) {
        calls++;
        const m = req.reply();
        m.flags.aa = true;
        m.answer.push({ name: req.qname, type: Type.A, class: 1, ttl: 300, data: '10.0.0.1' });
        return m;
      },
    };
    const s = await startTest([{ zones: ['.'], handlers: [cache, backend] }]);
    stop = s.stop;

    const first = decode((await udpExchange(s.port, queryBytes('WwW.Example.ORG.', Type.A, { id: 1 })))!);
    expect(first.id).toBe(1);
    expect(first.question[0]!.name).toBe('WwW.Example.ORG.');
    sortAndCheck(first, { rcode: Rcode.NOERROR, answer: ['www.example.org. 300 IN A 10.0.0.1'], aa: true });

    clock.t += 42_000;
    const second = decode((await udpExchange(s.port, queryBytes('www.EXAMPLE.org.', Type.A, { id: 2, edns: { udpSize: 1232 } })))!);
    expect(second.id).toBe(2);
    expect(second.question[0]!.name).toBe('www.EXAMPLE.org.');
    expect(second.answer[0]!.name).toBe('www.EXAMPLE.org.');
    expect(second.edns?.udpSize).toBe(1232);
    sortAndCheck(second, { rcode: Rcode.NOERROR, answer: ['www.example.org. 258 IN A 10.0.0.1'] });

    clock.t += 100_000;
    const third = decode((await tcpExchange(s.tcpPort, queryBytes('WWW.EXAMPLE.ORG.', Type.A, { id: 3, rd: false })))!);
    expect(third.id).toBe(3);
    expect(third.flags.rd).toBe(false);
    expect(third.question[0]!.name).toBe('WWW.EXAMPLE.ORG.');
    sortAndCheck(third, { answer: ['www.example.org. 158 IN A 10.0.0.1'] });

    expect(calls).toBe(1);
    expect(cache.size).toEqual([1, 0]);
  });
});
