import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { Type } from '../../src/dns/types.ts';
import type { Request } from '../../src/request.ts';
import { fakeEnv, makeRequest, serve } from '../../test/helpers.ts';
import { Bufsize, plugin, type BufsizeConfig } from './index.ts';

function controllers(text: string): Controller[] {
  const cf = parseCorefile(text, { file: 'Corefile', env: {} });
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === 'bufsize').map((d) => new Controller(d, b)));
}
const parse = (directive: string): BufsizeConfig => plugin.parse(controllers(`. {\n${directive}\n}\n`)[0]!);

describe('bufsize: parse', () => {
  it.each([['bufsize', 1232], ['bufsize 512', 512], ['bufsize 4096', 4096], ['bufsize 1400', 1400]])('%j → %d', (text, size) => {
    expect(parse(text)).toEqual({ size });
  });

  it.each([
    ['bufsize 511', "plugin/bufsize: Corefile:2 - Error during parsing: '511' out of range [512, 4096]"],
    ['bufsize 4097', "plugin/bufsize: Corefile:2 - Error during parsing: '4097' out of range [512, 4096]"],
    ['bufsize big', "plugin/bufsize: Corefile:2 - Error during parsing: invalid number 'big'"],
    ['bufsize 512 1232', "plugin/bufsize: Corefile:2 - Error during parsing: Wrong argument count or unexpected line ending after '1232'"],
    ['bufsize {\n size 512\n}', "plugin/bufsize: Corefile:3 - Error during parsing: unexpected block after 'bufsize'"],
  ])('rejects %j', (text, message) => {
    expect(() => parse(text)).toThrow(message);
  });

  it('sets up a Bufsize handler with the size', () => {
    expect(plugin.setup({ size: 700 }, fakeEnv().env)).toEqual(new Bufsize(700));
  });
});

describe('bufsize: handler', () => {
  const h = new Bufsize(1232);
  const sizeSeen = async (req: Request) => {
    let seen = 0;
    await serve(h, req, (r) => { seen = r.size; return r.reply(); });
    return seen;
  };

  it('lowers a larger advertised UDP size and passes the query on', async () => {
    expect(await sizeSeen(makeRequest('a.', Type.A, { edns: { udpSize: 4096 } }))).toBe(1232);
    const small = new Bufsize(600);
    let seen = 0;
    await serve(small, makeRequest('a.', Type.A, { edns: { udpSize: 4096 } }), (r) => { seen = r.size; return r.reply(); });
    expect(seen).toBe(600);
  });

  it('leaves smaller sizes, clients without EDNS0 and TCP alone', async () => {
    expect(await sizeSeen(makeRequest('a.', Type.A, { edns: { udpSize: 1000 } }))).toBe(1000);
    expect(await sizeSeen(makeRequest('a.', Type.A))).toBe(512);
    expect(await sizeSeen(makeRequest('a.', Type.A, { proto: 'tcp', edns: { udpSize: 4096 } }))).toBe(65535);
  });

  it('is transparent to the reply memo: memo-aware, and the terms are the next plugin\'s', async () => {
    expect(h.memo).toBe(true);
    const req = makeRequest('a.', Type.A, { edns: { udpSize: 4096 } });
    await serve(h, req, (r) => { r.memoValidUntil(42); return r.reply(); });
    expect(req.memoOff).toBe(false);
    expect(req.memoUntil).toBe(42);
    expect(req.memoDep).toBeUndefined();
  });
});
