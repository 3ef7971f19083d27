import { afterEach, describe, expect, it, vi } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { Rcode, Type } from '../../src/dns/types.ts';
import { DnsError } from '../../src/plugin.ts';
import { fakeEnv, makeRequest } from '../../test/helpers.ts';
import { formatDuration } from './duration.ts';
import { plugin, type ErrorsConfig } from './index.ts';

function controllers(text: string): Controller[] {
  const cf = parseCorefile(text, { file: 'Corefile', env: {} });
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === 'errors').map((d) => new Controller(d, b)));
}
/** Parse one `errors` directive written on line 2 of a Corefile. */
const parse = (directive: string): ErrorsConfig => plugin.parse(controllers(`. {\n${directive}\n}\n`)[0]!);

function setup(cfg: ErrorsConfig) {
  const f = fakeEnv();
  plugin.setup(cfg, f.env);
  expect(f.errorObservers).toHaveLength(1);
  const fail = (name: string, type: number, err: unknown, panic = !(err instanceof DnsError)) =>
    f.errorObservers[0]!(makeRequest(name, type), err, panic);
  const stop = async () => { for (const h of f.finalShutdown) await h(); };
  return { ...f, fail, stop };
}

afterEach(() => { vi.useRealTimers(); });

describe('errors: parse', () => {
  it.each([
    ['errors', { stacktrace: false, consolidate: [] }],
    ['errors stdout', { stacktrace: false, consolidate: [] }],
    ['errors {\n stacktrace\n}', { stacktrace: true, consolidate: [] }],
  ])('%j', (text, want) => {
    expect(parse(text)).toEqual(want);
  });

  it('reads consolidate rules with level and show_first', () => {
    const cfg = parse('errors {\n consolidate 5m ".* i/o timeout$" warning\n consolidate 30s "^Failed to .+"\n consolidate 1m30s ^x info show_first\n consolidate 1s ^y show_first\n}');
    expect(cfg.consolidate.map(({ pattern: _, ...r }) => r)).toEqual([
      { periodMs: 300_000, source: '.* i/o timeout$', level: 'warning', showFirst: false },
      { periodMs: 30_000, source: '^Failed to .+', level: 'error', showFirst: false },
      { periodMs: 90_000, source: '^x', level: 'info', showFirst: true },
      { periodMs: 1_000, source: '^y', level: 'error', showFirst: true },
    ]);
    expect(cfg.consolidate[0]!.pattern.test('read udp 1.2.3.4:53: i/o timeout')).toBe(true);
    expect(cfg.consolidate[1]!.pattern.test('failed to x')).toBe(false);
  });

  it.each([
    ['errors a b', "plugin/errors: Corefile:2 - Error during parsing: Wrong argument count or unexpected line ending after 'b'"],
    ['errors /dev/stderr', 'plugin/errors: Corefile:2 - Error during parsing: invalid log file: /dev/stderr'],
    ['errors {\n stacktrace on\n}', "plugin/errors: Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'on'"],
    ['errors {\n panic\n}', "plugin/errors: Corefile:3 - Error during parsing: unknown property 'panic'"],
    ['errors {\n consolidate 5m\n}', "plugin/errors: Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after '5m'"],
    ['errors {\n consolidate 5m ^a error show_first x\n}', "plugin/errors: Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'x'"],
    ['errors {\n consolidate 5mins ^a\n}', "plugin/errors: Corefile:3 - Error during parsing: invalid duration '5mins'"],
    ['errors {\n consolidate 0s ^a\n}', "plugin/errors: Corefile:3 - Error during parsing: consolidate period must be positive, got '0s'"],
    ['errors {\n consolidate 1m "(a"\n}', "plugin/errors: Corefile:3 - Error during parsing: invalid regexp '(a': Invalid regular expression: /(a/: Unterminated group"],
    ['errors {\n consolidate 1m ^a fatal\n}', 'plugin/errors: Corefile:3 - Error during parsing: unknown log level argument in consolidate: fatal'],
    ['errors {\n consolidate 1m ^a show_first error\n}', 'plugin/errors: Corefile:3 - Error during parsing: unknown log level argument in consolidate: error'],
  ])('rejects %j', (text, message) => {
    expect(() => parse(text)).toThrow(message);
  });

  it('rejects an expression longer than 10000 characters', () => {
    expect(() => parse(`errors {\n consolidate 1m ${'a'.repeat(10_001)}\n}`)).toThrow('regexp longer than 10000 characters');
  });
});

describe('errors: logging', () => {
  it('logs rcode, name, type and message, as CoreDNS does', () => {
    const s = setup(parse('errors'));
    s.fail('Example.ORG.', Type.A, new DnsError(Rcode.SERVFAIL, 'forward', new Error('read udp 10.0.0.1:53->8.8.8.8:53: i/o timeout')));
    s.fail('x.example.org.', Type.AAAA, new DnsError(Rcode.NOTAUTH, 'file', 'not authoritative'));
    expect(s.log.lines).toEqual([
      '[ERROR] 2 example.org. A: read udp 10.0.0.1:53->8.8.8.8:53: i/o timeout',
      '[ERROR] 9 x.example.org. AAAA: not authoritative',
    ]);
  });

  it('reports an unexpected exception as SERVFAIL, with its stack only when stacktrace is on', () => {
    const boom = new TypeError('cannot read properties of undefined');
    const plain = setup(parse('errors'));
    plain.fail('a.example.', Type.TXT, boom);
    expect(plain.log.lines).toEqual(['[ERROR] 2 a.example. TXT: cannot read properties of undefined']);

    const traced = setup(parse('errors {\n stacktrace\n}'));
    traced.fail('a.example.', Type.TXT, boom);
    expect(traced.log.lines[0]).toBe(`[ERROR] 2 a.example. TXT: cannot read properties of undefined\n${boom.stack}`);
    // A DnsError is an answer, not a crash: no stack.
    traced.fail('a.example.', Type.TXT, new DnsError(Rcode.REFUSED, 'acl', 'blocked'));
    expect(traced.log.lines[1]).toBe('[ERROR] 5 a.example. TXT: blocked');
  });

  it('consolidates matching errors into one line per period, at the rule level', async () => {
    vi.useFakeTimers();
    const s = setup(parse('errors {\n consolidate 30s "i/o timeout$" warning\n consolidate 5m ^Failed\n}'));
    const timeout = new DnsError(Rcode.SERVFAIL, 'forward', 'read udp 10.0.0.1:53->8.8.8.8:53: i/o timeout');
    for (let i = 0; i < 3; i++) s.fail('a.example.', Type.A, timeout);
    s.fail('b.example.', Type.A, new DnsError(Rcode.SERVFAIL, 'x', 'Failed to connect'));
    s.fail('c.example.', Type.MX, new DnsError(Rcode.SERVFAIL, 'x', 'something else'));
    expect(s.log.lines).toEqual(['[ERROR] 2 c.example. MX: something else']);

    vi.advanceTimersByTime(30_000);
    expect(s.log.lines.slice(1)).toEqual(["[WARNING] 3 errors like 'i/o timeout$' occurred in last 30s"]);
    // A new window opens with the next match.
    s.fail('a.example.', Type.A, timeout);
    vi.advanceTimersByTime(29_999);
    expect(s.log.lines).toHaveLength(2);
    vi.advanceTimersByTime(1);
    expect(s.log.lines[2]).toBe("[WARNING] 1 errors like 'i/o timeout$' occurred in last 30s");

    vi.advanceTimersByTime(300_000);
    expect(s.log.lines[3]).toBe("[ERROR] 1 errors like '^Failed' occurred in last 5m0s");
    expect(s.log.lines).toHaveLength(4);
  });

  it('show_first logs the first error at once and a summary only when more followed', () => {
    vi.useFakeTimers();
    const s = setup(parse('errors {\n consolidate 30s "timeout$" warning show_first\n}'));
    const timeout = new DnsError(Rcode.SERVFAIL, 'forward', 'i/o timeout');
    s.fail('example.org.', Type.A, timeout);
    s.fail('example.org.', Type.A, timeout);
    s.fail('example.org.', Type.A, timeout);
    expect(s.log.lines).toEqual(['[WARNING] 2 example.org. A: i/o timeout']);
    vi.advanceTimersByTime(30_000);
    expect(s.log.lines[1]).toBe("[WARNING] 3 errors like 'timeout$' occurred in last 30s");

    s.fail('example.org.', Type.A, timeout);
    vi.advanceTimersByTime(30_000);
    expect(s.log.lines).toEqual(['[WARNING] 2 example.org. A: i/o timeout', "[WARNING] 3 errors like 'timeout$' occurred in last 30s", '[WARNING] 2 example.org. A: i/o timeout']);
  });

  it('flushes pending counts on final shutdown and then logs errors one by one', async () => {
    vi.useFakeTimers();
    const s = setup(parse('errors {\n consolidate 1h ^boom\n}'));
    s.fail('a.', Type.A, new DnsError(Rcode.SERVFAIL, 'x', 'boom 1'));
    s.fail('a.', Type.A, new DnsError(Rcode.SERVFAIL, 'x', 'boom 2'));
    await s.stop();
    expect(s.log.lines).toEqual(["[ERROR] 2 errors like '^boom' occurred in last 1h0m0s"]);
    expect(vi.getTimerCount()).toBe(0);
    s.fail('a.', Type.A, new DnsError(Rcode.SERVFAIL, 'x', 'boom 3'));
    expect(s.log.lines[1]).toBe('[ERROR] 2 a. A: boom 3');
  });

  it('does not keep the process alive while a window is open', () => {
    const s = setup(parse('errors {\n consolidate 1h ^boom\n}'));
    const spy = vi.spyOn(globalThis, 'setTimeout');
    s.fail('a.', Type.A, new DnsError(Rcode.SERVFAIL, 'x', 'boom'));
    const timer = spy.mock.results[0]!.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    spy.mockRestore();
    return s.stop();
  });
});

describe('formatDuration (Go time.Duration.String)', () => {
  it.each([
    [0, '0s'], [30_000, '30s'], [300_000, '5m0s'], [3_600_000, '1h0m0s'], [90_500, '1m30.5s'],
    [1_500, '1.5s'], [100, '100ms'], [1.5, '1.5ms'], [0.25, '250µs'], [0.000_5, '500ns'],
    [3_723_004, '1h2m3.004s'], [-2_000, '-2s'],
  ])('%d ms → %s', (ms, want) => {
    expect(formatDuration(ms)).toBe(want);
  });
});
