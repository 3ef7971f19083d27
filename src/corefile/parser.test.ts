import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lex } from './lexer.ts';
import { loadCorefile, parseCorefile, parseServerKey, type ParseOptions } from './parser.ts';
import { CorefileError, type Corefile, type Directive, type ServerKey } from './types.ts';
import { kubeadmCorefile } from '../../test/fixtures/kubeadm.ts';

// A directive as "LINE: name arg...", or [that, nested lines] when it has a block.
type Line = string | [string, Line[]];
interface Shape { keys: string[]; lines: Line[] }

const keyText = (k: ServerKey) => (k.port === null ? k.zone : `${k.zone}:${k.port}`);
const line = (d: Directive): Line => {
  const head = `${d.name.line}: ${[d.name.text, ...d.args.map((a) => a.text)].join(' ')}`;
  return d.block === null ? head : [head, d.block.map(line)];
};
const shape = (cf: Corefile): Shape[] => cf.blocks.map((b) => ({ keys: b.keys.map(keyText), lines: b.directives.map(line) }));

const noFiles: Pick<ParseOptions, 'readFile' | 'glob'> = {
  readFile: (p) => { throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: 'ENOENT' }); },
  glob: () => [],
};
const parse = (text: string, env: Record<string, string> = {}) =>
  parseCorefile(text, { file: 'Corefile', env, ...noFiles, warn: () => {} });
const parseError = (text: string, env: Record<string, string> = {}): string => {
  try {
    parse(text, env);
  } catch (e) {
    expect(e).toBeInstanceOf(CorefileError);
    return (e as Error).message;
  }
  throw new Error('expected a CorefileError');
};

// Older kubeadm releases write a bare `cache 30`.
const kubeadm = kubeadmCorefile.replace(/cache 30 \{[^}]*\}/, 'cache 30');

describe('parseCorefile: structure', () => {
  const cases: Array<{ name: string; text: string; env?: Record<string, string>; want: Shape[] }> = [
    {
      name: 'kubeadm default Corefile',
      text: kubeadm,
      want: [{
        keys: ['.:53'],
        lines: [
          '2: errors',
          ['3: health', ['4: lameduck 5s']],
          '6: ready',
          ['7: kubernetes cluster.local in-addr.arpa ip6.arpa', ['8: pods insecure', '9: fallthrough in-addr.arpa ip6.arpa', '10: ttl 30']],
          '12: prometheus :9153',
          ['13: forward . /etc/resolv.conf', ['14: max_concurrent 1000']],
          '16: cache 30', '17: loop', '18: reload', '19: loadbalance',
        ],
      }],
    },
    {
      name: 'multiple blocks, the next one may start on the line of the closing brace',
      text: 'example.org {\n  whoami\n}\n\n.:1053 {\n  forward . 8.8.8.8\n} example.net {\n log\n}',
      want: [
        { keys: ['example.org.'], lines: ['2: whoami'] },
        { keys: ['.:1053'], lines: ['6: forward . 8.8.8.8'] },
        { keys: ['example.net.'], lines: ['8: log'] },
      ],
    },
    {
      name: 'several keys: spaces, commas, a trailing comma continues on the next line, { on its own line',
      text: 'a.org b.org,c.org, d.org,\n  e.org ,\n f.org\n{\n  whoami\n}',
      want: [{ keys: ['a.org.', 'b.org.', 'c.org.', 'd.org.', 'e.org.', 'f.org.'], lines: ['5: whoami'] }],
    },
    {
      name: 'nested blocks, one-line blocks and empty blocks',
      text: '. {\n a {\n  b 1 {\n   c 2 {\n    d\n   }\n  }\n  e\n }\n f { g h }\n i {}\n j { }\n k {\n }\n}',
      want: [{
        keys: ['.'],
        lines: [
          ['2: a', [['3: b 1', [['4: c 2', ['5: d']]]], '8: e']],
          ['10: f', ['10: g h']],
          ['11: i', []],
          ['12: j', []],
          ['13: k', []],
        ],
      }],
    },
    {
      name: 'a directive may follow the opening brace on its line; } may end the last line',
      text: '.:53 { errors\n  log }\nexample.org {\n  whoami }',
      want: [
        { keys: ['.:53'], lines: ['1: errors', '2: log'] },
        { keys: ['example.org.'], lines: ['4: whoami'] },
      ],
    },
    {
      name: 'quoted strings: spaces, literal braces and #, escaped quotes, backslashes kept, multi-line',
      text: '. {\n  a "x y" "{" "}" "#no comment" "say \\"hi\\"" "a\\\\b" "c\\d" ""\n  b "two\nlines" c\n  d\n}',
      want: [{
        keys: ['.'],
        lines: ['2: a x y { } #no comment say "hi" a\\\\b c\\d ', '3: b two\nlines c', '5: d'],
      }],
    },
    {
      name: 'a quote opens a quoted token only at its start',
      text: '. {\n  a b"c d"e\n}',
      want: [{ keys: ['.'], lines: ['2: a b"c d"e'] }],
    },
    {
      name: 'comments: whole lines, after tokens, and inside a word (CoreDNS/Caddy v1)',
      text: '# head\n.:53 { # keys\n  # nothing\n  forward . 1.1.1.1#dot 9.9.9.9 # tail\n  log#x y\n  errors\n}\n# end',
      want: [{ keys: ['.:53'], lines: ['4: forward . 1.1.1.1', '5: log', '6: errors'] }],
    },
    {
      name: 'environment: {$X}, {%X%}, {%X}, unset → "", values stay one token and never become syntax',
      text: '{$ZONE}:{$PORT} {\n  a {$ZONE} {%ZONE%} {%ZONE} x{$UNSET}y {$SPACES} "{$ZONE}"\n  b {$BRACE}\n  {$IMPORT} foo\n}',
      env: { ZONE: 'Example.org', PORT: '1053', SPACES: 'p q', BRACE: '{', IMPORT: 'import' },
      want: [{ keys: ['example.org.:1053'], lines: ['2: a Example.org Example.org Example.org xy p q Example.org', '3: b {', '4: import foo'] }],
    },
    {
      name: 'snippets: in a block, in a nested block, at the top level, importing other snippets',
      text: [
        '(common) {',
        '  errors',
        '  cache 30 {',
        '    success 100',
        '  }',
        '}',
        '(server) {',
        '  example.org {',
        '    import common',
        '  }',
        '}',
        '(deny) {',
        '  deny',
        '}',
        '.:53 {',
        '  import common',
        '  acl {',
        '    import deny',
        '  }',
        '  log',
        '}',
        'import server',
      ].join('\n'),
      want: [
        { keys: ['.:53'], lines: ['2: errors', ['3: cache 30', ['4: success 100']], ['17: acl', ['13: deny']], '20: log'] },
        { keys: ['example.org.'], lines: ['2: errors', ['3: cache 30', ['4: success 100']]] },
      ],
    },
    {
      // Caddy v1 compares line numbers only, so it would read `x 1 x 1` here.
      name: 'each import is its own line, even when the imported line numbers are equal',
      text: '(s) { x 1 }\n. {\n  import s\n  import s\n  y 2\n}',
      want: [{ keys: ['.'], lines: ['1: x 1', '1: x 1', '5: y 2'] }],
    },
    {
      name: 'a Corefile with a single block may omit the braces (Caddy)',
      text: 'example.org:1053\nwhoami\nlog {\n  class all\n}\n',
      want: [{ keys: ['example.org.:1053'], lines: ['2: whoami', ['3: log', ['4: class all']]] }],
    },
    {
      name: 'keys alone, and empty blocks',
      text: 'a.org {}\nb.org {\n}\nc.org',
      want: [{ keys: ['a.org.'], lines: [] }, { keys: ['b.org.'], lines: [] }, { keys: ['c.org.'], lines: [] }],
    },
    {
      name: 'empty and comment-only files',
      text: '\n# nothing here\n\n',
      want: [],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(shape(parse(c.text, c.env))).toEqual(c.want);
    });
  }

  it('tokens keep their file, line and quoting', () => {
    const cf = parse('. {\n  a "b" c\n}');
    const d = cf.blocks[0]!.directives[0]!;
    expect(d.name).toEqual({ text: 'a', file: 'Corefile', line: 2, quoted: false });
    expect(d.args).toEqual([
      { text: 'b', file: 'Corefile', line: 2, quoted: true },
      { text: 'c', file: 'Corefile', line: 2, quoted: false },
    ]);
    expect(cf.blocks[0]).toMatchObject({ file: 'Corefile', line: 1 });
    expect(cf.blocks[0]!.keys[0]).toEqual({ text: '.', scheme: 'dns', zone: '.', port: null, file: 'Corefile', line: 1 });
    expect(cf).toMatchObject({ file: 'Corefile', files: ['Corefile'] });
  });

  it('drops a byte order mark and ignores CR', () => {
    expect(shape(parse('\ufeff.:53 {\r\n  errors\r\n}\r\n'))).toEqual([{ keys: ['.:53'], lines: ['2: errors'] }]);
  });

  it('uses process.env by default', () => {
    process.env.CLUSTERDNS_PARSER_TEST = 'from-env.org';
    try {
      expect(parseCorefile('{$CLUSTERDNS_PARSER_TEST} {\n}', { file: 'Corefile' }).blocks[0]!.keys[0]!.zone).toBe('from-env.org.');
    } finally {
      delete process.env.CLUSTERDNS_PARSER_TEST;
    }
  });
});

describe('server block keys', () => {
  const cases: Array<[string, string[]]> = [
    ['.', ['.']],
    ['.:53', ['.:53']],
    ['example.org', ['example.org.']],
    ['Example.ORG.:1053', ['example.org.:1053']],
    ['dns://example.org:5300', ['example.org.:5300']],
    ['dns://.', ['.']],
    ['example.org:053', ['example.org.:53']],
    ['example.org:0', ['example.org.:0']],
    ['10.0.0.0/8', ['10.in-addr.arpa.']],
    ['10.0.0.0/24', ['0.0.10.in-addr.arpa.']],
    ['10.0.0.0/24:5353', ['0.0.10.in-addr.arpa.:5353']],
    ['10.1.2.3/16', ['1.10.in-addr.arpa.']], // host bits are masked, as net.ParseCIDR does
    ['192.168.1.1/32', ['1.1.168.192.in-addr.arpa.']],
    ['0.0.0.0/0', ['in-addr.arpa.']],
    // Off an octet boundary: every zone of the next octet boundary (plugin/pkg/cidr Split + Reverse).
    ['10.0.0.0/23', ['0.0.10.in-addr.arpa.', '1.0.10.in-addr.arpa.']],
    ['172.16.0.0/12', Array.from({ length: 16 }, (_, i) => `${16 + i}.172.in-addr.arpa.`)],
    ['192.168.0.0/22:1053', ['0.168.192.in-addr.arpa.:1053', '1.168.192.in-addr.arpa.:1053', '2.168.192.in-addr.arpa.:1053', '3.168.192.in-addr.arpa.:1053']],
    ['10.0.0.128/25', Array.from({ length: 128 }, (_, i) => `${128 + i}.0.0.10.in-addr.arpa.`)],
    ['fd00::/64', ['0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.']],
    ['fd00:1234::/32:53', ['4.3.2.1.0.0.d.f.ip6.arpa.:53']],
    ['fd00::/14', ['0.0.d.f.ip6.arpa.', '1.0.d.f.ip6.arpa.', '2.0.d.f.ip6.arpa.', '3.0.d.f.ip6.arpa.']],
    ['fd00::1/128', ['1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.']],
    // A classless (RFC 2317) delegation name is a plain zone, not a CIDR.
    ['0/26.2.0.192.in-addr.arpa', ['0/26.2.0.192.in-addr.arpa.']],
  ];
  for (const [key, zones] of cases) {
    it(`${key} → ${zones.length > 4 ? `${zones.length} zones` : zones.join(' ')}`, () => {
      const keys = parseServerKey(key, 'Corefile', 7);
      expect(keys.map(keyText)).toEqual(zones);
      for (const k of keys) expect(k).toMatchObject({ text: key, scheme: 'dns', file: 'Corefile', line: 7 });
    });
  }

  it('a CIDR key that expands keeps every zone in the block, in order', () => {
    const cf = parse('example.org 10.0.0.0/23 example.net {\n}');
    expect(cf.blocks[0]!.keys.map((k) => `${k.text}=${k.zone}`)).toEqual([
      'example.org=example.org.', '10.0.0.0/23=0.0.10.in-addr.arpa.', '10.0.0.0/23=1.0.10.in-addr.arpa.', 'example.net=example.net.',
    ]);
  });
});

describe('parseCorefile: errors', () => {
  const cases: Array<{ name: string; text: string; want: string }> = [
    // Braces.
    { name: 'stray } at top level', text: '.:53 {\n}\n}', want: "Corefile:3 - Error during parsing: Unexpected '}' because no matching opening brace" },
    { name: 'stray } after keys', text: 'a.org }', want: "Corefile:1 - Error during parsing: Unexpected '}' because no matching opening brace" },
    { name: 'stray } in a brace-less block', text: '.:53\nerrors\n}', want: "Corefile:3 - Error during parsing: Unexpected '}' because no matching opening brace" },
    { name: 'unclosed server block', text: '.:53 {\n  errors\n', want: "Corefile:1 - Error during parsing: Unexpected EOF: the '{' opened here is never closed" },
    { name: 'unclosed nested block', text: '.:53 {\n  health {\n    lameduck 5s\n}\n', want: "Corefile:1 - Error during parsing: Unexpected EOF: the '{' opened here is never closed" },
    { name: 'unclosed inner block', text: '.:53 {\n  a {\n    b {\n  }\n}\n', want: "Corefile:1 - Error during parsing: Unexpected EOF: the '{' opened here is never closed" },
    { name: 'missing { after the keys of a second block', text: 'a.org {\n}\nb.org\n  whoami\n', want: "Corefile:4 - Error during parsing: missing '{' after the keys of the server block on line 3 (only a Corefile with a single server block may omit the braces)" },
    { name: '{ before any key', text: '{\n  whoami\n}', want: "Corefile:1 - Error during parsing: Unexpected '{': a server block needs keys before its '{'" },
    { name: 'a block on the line after its directive', text: '. {\n  health\n  {\n  }\n}', want: "Corefile:3 - Error during parsing: Unexpected '{': a block must open on the same line as its directive" },
    { name: 'tokens after a closing brace on the same line', text: '. {\n  health { lameduck 5s } ready\n}', want: "Corefile:2 - Error during parsing: Unexpected 'ready' after '}': start it on a new line" },
    { name: 'extra comma before {', text: 'a.org, {\n}', want: "Corefile:1 - Error during parsing: Expected another address but had '{' - check for extra comma" },
    { name: 'comma at EOF', text: 'a.org,', want: "Corefile:1 - Error during parsing: Unexpected EOF: expected another key after 'a.org,'" },
    { name: 'unterminated quote', text: '. {\n  a "b\n}\n', want: 'Corefile:2 - Error during parsing: Unterminated quoted string' },
    { name: 'quoted { does not open a block', text: '. "{"\n  whoami\n}', want: "Corefile:3 - Error during parsing: Unexpected '}' because no matching opening brace" },
    // Keys.
    { name: 'bad port', text: 'example.org:abc {\n}', want: "Corefile:1 - Error during parsing: invalid port 'abc' in 'example.org:abc'" },
    { name: 'port out of range', text: '\nexample.org:65536 {\n}', want: "Corefile:2 - Error during parsing: invalid port '65536' in 'example.org:65536': must be 0-65535" },
    { name: 'empty port', text: 'example.org: {\n}', want: 'Corefile:1 - Error during parsing: expecting data after last colon: "example.org:"' },
    { name: 'no zone', text: ':53 {\n}', want: "Corefile:1 - Error during parsing: zone is not a valid domain name: ':53' names no zone (the root zone is '.:53')" },
    { name: 'listen address instead of a zone', text: '[::1]:53 {\n}', want: 'Corefile:1 - Error during parsing: zone is not a valid domain name: [::1] (a key is a zone, not a listen address: see the bind plugin)' },
    { name: 'empty label', text: 'a..org {\n}', want: 'Corefile:1 - Error during parsing: zone is not a valid domain name: a..org' },
    { name: 'label too long', text: `${'x'.repeat(64)}.org {\n}`, want: `Corefile:1 - Error during parsing: zone is not a valid domain name: ${'x'.repeat(64)}.org` },
    { name: 'white space in a quoted key', text: '"a b.org" {\n}', want: 'Corefile:1 - Error during parsing: zone is not a valid domain name: a b.org' },
    { name: 'mask too long', text: '10.0.0.0/33 {\n}', want: 'Corefile:1 - Error during parsing: invalid CIDR 10.0.0.0/33' },
    { name: 'IPv4 octet out of range', text: '10.0.0.256/24 {\n}', want: 'Corefile:1 - Error during parsing: invalid CIDR 10.0.0.256/24' },
    { name: 'IPv6 CIDR from :: (CoreDNS refuses it)', text: '::/0 {\n}', want: 'Corefile:1 - Error during parsing: invalid CIDR ::/0' },
    { name: 'tls://', text: 'tls://example.org {\n}', want: 'Corefile:1 - Error during parsing: scheme tls:// is not supported yet' },
    { name: 'https://', text: 'dns://a.org https://example.org {\n}', want: 'Corefile:1 - Error during parsing: scheme https:// is not supported yet' },
    { name: 'grpc://', text: 'grpc://. {\n}', want: 'Corefile:1 - Error during parsing: scheme grpc:// is not supported yet' },
    { name: 'quic://', text: 'quic://.:853 {\n}', want: 'Corefile:1 - Error during parsing: scheme quic:// is not supported yet' },
    { name: 'https3://', text: 'https3://. {\n}', want: 'Corefile:1 - Error during parsing: scheme https3:// is not supported yet' },
    { name: 'unknown scheme', text: 'foo://example.org {\n}', want: "Corefile:1 - Error during parsing: unknown scheme foo:// in 'foo://example.org'" },
    // Duplicates (CoreDNS's wording; a key without a port is compared as "the default port").
    { name: 'duplicate zone and port', text: 'example.org:53 {\n}\n\nexample.org:53 {\n}', want: 'Corefile:4 - Error during parsing: cannot serve dns://example.org.:53 - it is already defined' },
    { name: 'duplicate in one block, case and trailing dot ignored', text: 'example.org Example.ORG. {\n}', want: 'Corefile:1 - Error during parsing: cannot serve dns://example.org. - it is already defined' },
    { name: 'duplicate through a reverse CIDR', text: '10.in-addr.arpa {\n}\n10.0.0.0/8 {\n}', want: 'Corefile:3 - Error during parsing: cannot serve dns://10.in-addr.arpa. - it is already defined' },
    { name: 'duplicate through an expanded CIDR', text: '10.0.0.0/23:53 {\n}\n1.0.10.in-addr.arpa.:53 {\n}', want: 'Corefile:3 - Error during parsing: cannot serve dns://1.0.10.in-addr.arpa.:53 - it is already defined' },
    // Imports and snippets.
    { name: 'import without argument', text: '. {\n  import\n}', want: "Corefile:2 - Error during parsing: Wrong argument count or unexpected line ending after 'import'" },
    { name: 'import with two arguments', text: '. {\n  import a b\n}', want: 'Corefile:2 - Error during parsing: Import takes only one argument (glob pattern or file)' },
    { name: 'import of an empty name', text: '. {\n  import ""\n}', want: 'Corefile:2 - Error during parsing: Import requires a non-empty filepath' },
    { name: 'unknown snippet and no such file', text: '. {\n  import nothing\n}', want: `Corefile:2 - Error during parsing: File to import not found: ${path.resolve('nothing')} (and no snippet 'nothing' is defined before this line)` },
    { name: 'snippet used before its definition', text: '. {\n  import later\n}\n(later) {\n  log\n}', want: `Corefile:2 - Error during parsing: File to import not found: ${path.resolve('later')} (and no snippet 'later' is defined before this line)` },
    { name: 'snippet declared twice', text: '(s) {\n}\n(s) {\n}', want: 'Corefile:3 - Error during parsing: redeclaration of previously declared snippet s' },
    { name: 'snippet without braces', text: '(s)\n  log', want: "Corefile:2 - Error during parsing: Unexpected token 'log', expecting '{' after snippet (s)" },
    { name: 'snippet importing itself', text: '(s) {\n  log\n  import s\n}\n. {\n  import s\n}', want: `Corefile:3 - Error during parsing: import cycle: ${path.resolve('Corefile')} -> (s) -> (s)` },
    { name: 'snippets importing each other', text: '(a) {\n  import b\n}\n(b) {\n  import a\n}\n. {\n  import a\n}', want: `Corefile:5 - Error during parsing: import cycle: ${path.resolve('Corefile')} -> (a) -> (b) -> (a)` },
    { name: 'glob with two wildcards', text: '. {\n  import /etc/*/x*.conf\n}', want: 'Corefile:2 - Error during parsing: Glob pattern may only contain one wildcard (*), but has others: /etc/*/x*.conf' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(parseError(c.text)).toBe(c.want);
    });
  }
});

describe('imports from files', () => {
  let dir: string;
  const write = (rel: string, text: string) => {
    const p = path.join(dir, rel);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, text);
    return p;
  };

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'clusterdns-corefile-'));
    write('conf/common.conf', '# shared\nerrors\nimport more/cache.conf\n');
    write('conf/more/cache.conf', 'cache 30 {\n  success 100\n}\n');
    write('zones/b.conf', 'b.org {\n  whoami\n}\n');
    write('zones/a.conf', 'a.org {\n  log\n}\n');
    write('zones/readme.txt', 'not imported');
    write('cycle/one.conf', 'import two.conf\n');
    write('cycle/two.conf', 'import one.conf\n');
    write('snip/defs.conf', '(common) {\n  import ../conf/common.conf\n}\n');
    write('env/import.conf', 'log\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('imports a file and a sorted glob relative to the importing file, keeping their file and line', () => {
    const text = '.:53 {\n  import conf/common.conf\n  ready\n}\nimport zones/*.conf\nimport nomatch/*.conf\n';
    const main = write('Corefile', text);
    const warnings: string[] = [];
    const cf = parseCorefile(text, { file: main, env: {}, warn: (m) => warnings.push(m) });
    expect(shape(cf)).toEqual([
      { keys: ['.:53'], lines: ['2: errors', ['1: cache 30', ['2: success 100']], '3: ready'] },
      { keys: ['a.org.'], lines: ['2: log'] },
      { keys: ['b.org.'], lines: ['2: whoami'] },
    ]);
    const [errors, cache, ready] = cf.blocks[0]!.directives;
    expect(errors!.name.file).toBe(path.join(dir, 'conf/common.conf'));
    expect(cache!.name.file).toBe(path.join(dir, 'conf/more/cache.conf'));
    expect(cache!.block![0]!.args[0]).toEqual({ text: '100', file: path.join(dir, 'conf/more/cache.conf'), line: 2, quoted: false });
    expect(ready!.name.file).toBe(main);
    expect(cf.blocks[1]!.keys[0]).toMatchObject({ file: path.join(dir, 'zones/a.conf'), line: 1 });
    expect(cf.files).toEqual([
      main,
      path.join(dir, 'conf/common.conf'),
      path.join(dir, 'conf/more/cache.conf'),
      path.join(dir, 'zones/a.conf'),
      path.join(dir, 'zones/b.conf'),
    ]);
    expect(warnings).toEqual(['No files matching import glob pattern: nomatch/*.conf']);
  });

  it('resolves imports inside a snippet against the file that defines it', () => {
    const main = path.join(dir, 'Corefile');
    const cf = parseCorefile('import snip/defs.conf\n. {\n  import common\n}\n', { file: main, env: {} });
    expect(shape(cf)).toEqual([{ keys: ['.'], lines: ['2: errors', ['1: cache 30', ['2: success 100']]] }]);
  });

  it('substitutes the environment in the import path', () => {
    const cf = parseCorefile('. {\n  import {$DIR}/import.conf\n}', { file: path.join(dir, 'Corefile'), env: { DIR: 'env' } });
    expect(shape(cf)).toEqual([{ keys: ['.'], lines: ['1: log'] }]);
  });

  it('reports an import cycle naming the file', () => {
    const main = path.join(dir, 'Corefile');
    expect(() => parseCorefile('. {\n  import cycle/one.conf\n}', { file: main })).toThrow(new CorefileError(
      path.join(dir, 'cycle/two.conf'), 1, undefined,
      `import cycle: ${main} -> ${path.join(dir, 'cycle/one.conf')} -> ${path.join(dir, 'cycle/two.conf')} -> ${path.join(dir, 'cycle/one.conf')}`,
    ));
  });

  it('reports a Corefile importing itself', () => {
    const main = write('self/Corefile', '. {\n  import Corefile\n}\n');
    expect(() => loadCorefile(main)).toThrow(`${main}:2 - Error during parsing: import cycle: ${main} -> ${main}`);
  });

  it('reports a missing file, but not a glob that matches nothing', () => {
    const main = path.join(dir, 'Corefile');
    expect(() => parseCorefile('. {\n  import conf/missing.conf\n}', { file: main })).toThrow(
      `${main}:2 - Error during parsing: File to import not found: ${path.join(dir, 'conf/missing.conf')}`,
    );
    expect(shape(parseCorefile('. {\n  import conf/*.missing\n}', { file: main, warn: () => {} }))).toEqual([{ keys: ['.'], lines: [] }]);
  });

  it('reports a directory that cannot be imported', () => {
    const main = path.join(dir, 'Corefile');
    expect(() => parseCorefile('. {\n  import conf\n}', { file: main })).toThrow(
      `${main}:2 - Error during parsing: Could not import ${path.join(dir, 'conf')}: is a directory`,
    );
  });

  it('errors in an imported file name that file and line', () => {
    write('bad/quote.conf', 'log\n  "unterminated\n');
    write('bad/key.conf', 'ok.org {\n}\nexample.org:abc {\n}\n');
    const main = path.join(dir, 'Corefile');
    expect(() => parseCorefile('. {\n  import bad/quote.conf\n}', { file: main })).toThrow(
      `${path.join(dir, 'bad/quote.conf')}:2 - Error during parsing: Unterminated quoted string`,
    );
    expect(() => parseCorefile('import bad/key.conf', { file: main })).toThrow(
      `${path.join(dir, 'bad/key.conf')}:3 - Error during parsing: invalid port 'abc' in 'example.org:abc'`,
    );
  });

  it('reads files only through readFile and glob when they are given', () => {
    const read: string[] = [];
    const cf = parseCorefile('. {\n  import virtual/*.conf\n}', {
      file: '/virtual/Corefile',
      env: {},
      readFile: (p) => { read.push(p); return `x ${path.basename(p)}\n`; },
      glob: (pattern) => (pattern === '/virtual/virtual/*.conf' ? ['/virtual/virtual/2.conf', '/virtual/virtual/1.conf'] : []),
    });
    expect(shape(cf)).toEqual([{ keys: ['.'], lines: ['1: x 1.conf', '1: x 2.conf'] }]);
    expect(read).toEqual(['/virtual/virtual/1.conf', '/virtual/virtual/2.conf']);
    expect(cf.files).toEqual(['/virtual/Corefile', '/virtual/virtual/1.conf', '/virtual/virtual/2.conf']);
  });

  it('loadCorefile reads the file and its imports', () => {
    const main = write('load/Corefile', '{$ZONE} {\n  import ../conf/common.conf\n}\n');
    const cf = loadCorefile(main, { ZONE: 'cluster.local' });
    expect(cf.file).toBe(main);
    expect(shape(cf)).toEqual([{ keys: ['cluster.local.'], lines: ['2: errors', ['1: cache 30', ['2: success 100']]] }]);
    expect(cf.files).toEqual([main, path.join(dir, 'conf/common.conf'), path.join(dir, 'conf/more/cache.conf')]);
  });

  it('loadCorefile names the path and the OS reason when the file cannot be read', () => {
    const missing = path.join(dir, 'nope/Corefile');
    expect(() => loadCorefile(missing)).toThrow(`open ${missing}: no such file or directory`);
    expect(() => loadCorefile(dir)).toThrow(`read ${dir}: is a directory`);
  });
});

describe('lex', () => {
  it('gives each token its start line and the line it ends on', () => {
    expect(lex('a "b\nc" d\ne', 'F').map((t) => [t.text, t.line, t.endLine])).toEqual([
      ['a', 1, 1], ['b\nc', 1, 2], ['d', 2, 2], ['e', 3, 3],
    ]);
  });

  it('marks tokens changed by the environment', () => {
    expect(lex('{$A} b', 'F', { A: '{' }).map((t) => [t.text, t.expanded])).toEqual([['{', true], ['b', false]]);
  });
});
