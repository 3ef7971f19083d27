import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { decode, encode } from '../../src/dns/codec.ts';
import { Class, Rcode, Type } from '../../src/dns/types.ts';
import { fakeEnv, makeRequest, serve, sortAndCheck } from '../../test/helpers.ts';
import { Whoami, plugin } from './index.ts';

function controllers(text: string): Controller[] {
  const cf = parseCorefile(text, { file: 'Corefile', env: {} });
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === 'whoami').map((d) => new Controller(d, b)));
}
const parse = (directive: string) => plugin.parse(controllers(`. {\n${directive}\n}\n`)[0]!);
const handler = () => new Whoami();
const never = () => { throw new Error('whoami called next'); };

describe('whoami: parse', () => {
  it('takes no arguments and no block', () => {
    expect(parse('whoami')).toEqual({});
    expect(() => parse('whoami extra')).toThrow("plugin/whoami: Corefile:2 - Error during parsing: Wrong argument count or unexpected line ending after 'extra'");
    expect(() => parse('whoami {\n verbose\n}')).toThrow("plugin/whoami: Corefile:3 - Error during parsing: unexpected block after 'whoami'");
  });

  it('sets up a Whoami handler', () => {
    expect(plugin.setup(parse('whoami'), fakeEnv().env)).toBeInstanceOf(Whoami);
  });
});

describe('whoami: answers', () => {
  it('puts the IPv4 client address and UDP port in the additional section, keeping the name case', async () => {
    const m = await serve(handler(), makeRequest('Example.ORG.', Type.A, { remote: '10.240.0.1', remotePort: 40212 }), never);
    sortAndCheck(m, {
      rcode: Rcode.NOERROR, aa: true, answer: [], ns: [],
      extra: ['example.org. 0 IN A 10.240.0.1', '_udp.example.org. 0 IN SRV 0 0 40212 .'],
    });
    expect(m.additional.map((r) => r.name)).toEqual(['Example.ORG.', '_udp.Example.ORG.']);
  });

  it('answers AAAA for IPv6 clients and names the transport', async () => {
    const m = await serve(handler(), makeRequest('example.org.', Type.MX, { remote: 'fe80::1%eth0', remotePort: 53000, proto: 'tcp' }), never);
    sortAndCheck(m, { aa: true, answer: [], extra: ['example.org. 0 IN AAAA fe80::1', '_tcp.example.org. 0 IN SRV 0 0 53000 .'] });
  });

  it('reports an IPv4-mapped client as IPv4', async () => {
    const m = await serve(handler(), makeRequest('a.', Type.A, { remote: '::ffff:192.0.2.7', remotePort: 5 }), never);
    sortAndCheck(m, { extra: ['a. 0 IN A 192.0.2.7', '_udp.a. 0 IN SRV 0 0 5 .'] });
  });

  it('handles the root name and copies the query class', async () => {
    const m = await serve(handler(), makeRequest('.', Type.NS, { qclass: Class.CH, remote: '127.0.0.1', remotePort: 1 }), never);
    expect(m.additional).toEqual([
      { name: '.', type: Type.A, class: Class.CH, ttl: 0, data: '127.0.0.1' },
      { name: '_udp.', type: Type.SRV, class: Class.CH, ttl: 0, data: { priority: 0, weight: 0, port: 1, target: '.' } },
    ]);
    expect(m.question).toEqual([{ name: '.', type: Type.NS, class: Class.CH }]);
  });

  it('survives the wire', async () => {
    const m = await serve(handler(), makeRequest('Example.ORG.', Type.AAAA, { remote: '2001:db8::7', remotePort: 4242, id: 99 }), never);
    const back = decode(encode(m));
    expect(back.id).toBe(99);
    sortAndCheck(back, { aa: true, answer: [], extra: ['example.org. 0 IN AAAA 2001:db8::7', '_udp.example.org. 0 IN SRV 0 0 4242 .'] });
  });
});
