import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/corefile/controller.ts';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { type CacheConfig, defaultConfig, plugin } from './index.ts';
import { kubeadmCorefile } from '../../test/fixtures/kubeadm.ts';

function controllers(text: string): Controller[] {
  const cf = parseCorefile(text, { file: 'Corefile', env: {} });
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === 'cache').map((d) => new Controller(d, b)));
}
/** Parse a `cache` directive written from line 2 of a block with the given keys. */
const parse = (directive: string, keys = '.'): CacheConfig => plugin.parse(controllers(`${keys} {\n${directive}\n}\n`)[0]!);

describe('cache: parse', () => {
  const d = defaultConfig(['.']);

  it('has CoreDNS defaults', () => {
    expect(parse('cache')).toEqual({
      zones: ['.'],
      success: { capacity: 9984, maxTtl: 3600, minTtl: 5 },
      denial: { capacity: 9984, maxTtl: 1800, minTtl: 5 },
      servfailMs: 5000,
      prefetch: { amount: 0, windowMs: 60_000, percentage: 10 },
      serveStale: { ms: 0, verify: false },
      disable: { success: [], denial: [] },
      keepTtl: false,
    });
  });

  it.each<[string, Partial<CacheConfig>]>([
    ['cache 30', { success: { ...d.success, maxTtl: 30 }, denial: { ...d.denial, maxTtl: 30 } }],
    ['cache example.org', { zones: ['example.org.'] }],
    ['cache 10 Example.ORG. example.net', { zones: ['example.org.', 'example.net.'], success: { ...d.success, maxTtl: 10 }, denial: { ...d.denial, maxTtl: 10 } }],
    ['cache {\n success 5000\n denial 2500\n}', { success: { ...d.success, capacity: 5000 }, denial: { ...d.denial, capacity: 2500 } }],
    ['cache 300 {\n success 5000 60 10\n denial 2500 30 0\n}', { success: { capacity: 5000, maxTtl: 60, minTtl: 10 }, denial: { capacity: 2500, maxTtl: 30, minTtl: 0 } }],
    ['cache {\n prefetch 10\n}', { prefetch: { amount: 10, windowMs: 60_000, percentage: 10 } }],
    ['cache {\n prefetch 2 10m 20%\n}', { prefetch: { amount: 2, windowMs: 600_000, percentage: 20 } }],
    ['cache {\n serve_stale\n}', { serveStale: { ms: 3_600_000, verify: false } }],
    ['cache {\n serve_stale 10m\n}', { serveStale: { ms: 600_000, verify: false } }],
    ['cache {\n serve_stale 1h Verify\n}', { serveStale: { ms: 3_600_000, verify: true } }],
    ['cache {\n serve_stale 0 immediate\n}', { serveStale: { ms: 0, verify: false } }],
    ['cache {\n servfail 0\n}', { servfailMs: 0 }],
    ['cache {\n servfail 5m\n}', { servfailMs: 300_000 }],
    ['cache {\n keepttl\n}', { keepTtl: true }],
    ['cache {\n disable success\n}', { disable: { success: ['.'], denial: [] } }],
    ['cache {\n disable denial Example.org sub.example.net.\n}', { disable: { success: [], denial: ['example.org.', 'sub.example.net.'] } }],
  ])('%j', (text, want) => {
    expect(parse(text)).toEqual({ ...d, ...want });
  });

  it('takes the zones of the server block when none are given', () => {
    expect(parse('cache', 'cluster.local in-addr.arpa').zones).toEqual(['cluster.local.', 'in-addr.arpa.']);
  });

  it('reads the kubeadm Corefiles (plain and with disable)', () => {
    const [c] = controllers(kubeadmCorefile);
    expect(plugin.parse(c!)).toEqual({
      ...d,
      success: { ...d.success, maxTtl: 30 },
      denial: { ...d.denial, maxTtl: 30 },
      disable: { success: ['cluster.local.'], denial: ['cluster.local.'] },
    });
    const [plain] = controllers(kubeadmCorefile.replace(/cache 30 \{[^}]*\}/, 'cache 30'));
    expect(plugin.parse(plain!)).toEqual({ ...d, success: { ...d.success, maxTtl: 30 }, denial: { ...d.denial, maxTtl: 30 } });
  });

  const e = (line: number, msg: string) => `plugin/cache: Corefile:${line} - Error during parsing: ${msg}`;
  it.each([
    ['cache 0', e(2, 'cache TTL can not be zero or negative: 0')],
    ['cache -5 example.org', e(2, 'cache TTL can not be zero or negative: -5')],
    ['cache {\n success\n}', e(3, "Wrong argument count or unexpected line ending after 'success'")],
    ['cache {\n success 10 20 30 40\n}', e(3, "Wrong argument count or unexpected line ending after '40'")],
    ['cache {\n success lots\n}', e(3, "invalid number 'lots'")],
    ['cache {\n success 0\n}', e(3, 'cache capacity can not be zero or negative: 0')],
    ['cache {\n success 100 0\n}', e(3, 'cache TTL can not be zero or negative: 0')],
    ['cache {\n denial 100 10 -1\n}', e(3, 'cache min TTL can not be negative: -1')],
    ['cache {\n denial 100 ten\n}', e(3, "invalid number 'ten'")],
    ['cache {\n prefetch\n}', e(3, "Wrong argument count or unexpected line ending after 'prefetch'")],
    ['cache {\n prefetch 1 1m 10% more\n}', e(3, "Wrong argument count or unexpected line ending after 'more'")],
    ['cache {\n prefetch -1\n}', e(3, 'prefetch amount should be positive: -1')],
    ['cache {\n prefetch 1 soon\n}', e(3, "invalid duration 'soon'")],
    ['cache {\n prefetch 1 1m 10\n}', e(3, "last character of percentage should be `%`, but is: '0'")],
    ['cache {\n prefetch 1 1m 5%\n}', e(3, 'percentage should fall in range [10, 90]: 5')],
    ['cache {\n prefetch 1 1m 91%\n}', e(3, 'percentage should fall in range [10, 90]: 91')],
    ['cache {\n prefetch 1 1m x%\n}', e(3, "invalid number 'x'")],
    ['cache {\n serve_stale 1h verify now\n}', e(3, "Wrong argument count or unexpected line ending after 'now'")],
    ['cache {\n serve_stale -1s\n}', e(3, 'invalid negative duration for serve_stale')],
    ['cache {\n serve_stale 1h later\n}', e(3, 'invalid value for serve_stale refresh mode: later')],
    ['cache {\n servfail\n}', e(3, "Wrong argument count or unexpected line ending after 'servfail'")],
    ['cache {\n servfail -1s\n}', e(3, 'invalid negative ttl for servfail')],
    ['cache {\n servfail 6m\n}', e(3, 'caching SERVFAIL responses over 5 minutes is not permitted')],
    ['cache {\n disable\n}', e(3, "Wrong argument count or unexpected line ending after 'disable'")],
    ['cache {\n disable positive cluster.local\n}', e(3, 'cache type for disable must be "success" or "denial"')],
    ['cache {\n keepttl forever\n}', e(3, "Wrong argument count or unexpected line ending after 'forever'")],
    ['cache {\n capacity 10\n}', e(3, "unknown property 'capacity'")],
    ['cache {\n success 10 {\n  x\n }\n}', e(4, "unexpected block after 'success'")],
  ])('rejects %j', (text, message) => {
    expect(() => parse(text)).toThrow(message);
  });
});
