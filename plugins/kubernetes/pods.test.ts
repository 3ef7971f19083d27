// The compact pod table: slots, address chains, free-slot reuse, the replaceAll sweep, IPv4 parsing.
import { describe, expect, it } from 'vitest';
import { PodTable, ipv4Word, type IPKey } from './pods.ts';

const w = (ip: string) => ipv4Word(ip)!;

function table() {
  const moved: IPKey[] = [];
  return { t: new PodTable((k) => moved.push(k)), moved };
}

describe('PodTable', () => {
  it('finds pods by address and namespace, and reports the addresses that moved', () => {
    const { t, moved } = table();
    expect(t.upsert('a', 'p1', [w('10.0.0.1')], false)).toBe(true);
    expect(t.upsert('b', 'p2', [w('10.0.0.2'), 'fd00::2'], false)).toBe(true);
    expect(moved).toEqual([w('10.0.0.1'), w('10.0.0.2'), 'fd00::2']);
    expect(t.size).toBe(2);
    expect(t.hasPod(w('10.0.0.1'), 'a')).toBe(true);
    expect(t.hasPod(w('10.0.0.1'), 'b')).toBe(false);
    expect(t.hasPod('fd00::2', 'b')).toBe(true);
    expect(t.namespaceOf(w('10.0.0.2'))).toBe('b');
    expect(t.namespaceOf('fd00::2')).toBe('b');
    expect(t.namespaceOf(w('10.0.0.3'))).toBeUndefined();
    expect(t.has(w('10.0.0.3'))).toBe(false);
    // The same pod again: nothing moves.
    moved.length = 0;
    expect(t.upsert('a', 'p1', [w('10.0.0.1')], false)).toBe(false);
    expect(moved).toEqual([]);
    // A new address: the old and the new one move.
    expect(t.upsert('a', 'p1', [w('10.0.0.9')], false)).toBe(true);
    expect(moved).toEqual([w('10.0.0.1'), w('10.0.0.9')]);
    expect(t.has(w('10.0.0.1'))).toBe(false);
    expect(t.remove('a', 'p1')).toBe(true);
    expect(t.remove('a', 'p1')).toBe(false);
    expect(t.remove('nope', 'p1')).toBe(false);
    expect(t.has(w('10.0.0.9'))).toBe(false);
    expect(t.size).toBe(1);
  });

  it('chains pods sharing an address; hostNetwork or several namespaces name no namespace', () => {
    const { t } = table();
    const node = w('192.168.1.10');
    t.upsert('kube-system', 'proxy', [node], true);
    t.upsert('monitoring', 'exporter', [node], true);
    t.upsert('a', 'old', [w('10.0.0.5')], false);
    t.upsert('a', 'new', [w('10.0.0.5')], false);
    t.upsert('b', 'other', [w('10.0.0.6')], false);
    t.upsert('c', 'other', [w('10.0.0.6')], false);
    expect(t.hasPod(node, 'monitoring')).toBe(true);
    expect(t.hasPod(node, 'kube-system')).toBe(true);
    expect(t.namespaceOf(node)).toBeUndefined();
    expect(t.namespaceOf(w('10.0.0.5'))).toBe('a');
    expect(t.namespaceOf(w('10.0.0.6'))).toBeUndefined();
    // Unlink from the middle, the head and the tail of chains.
    t.remove('a', 'new');
    expect(t.namespaceOf(w('10.0.0.5'))).toBe('a');
    t.remove('a', 'old');
    expect(t.has(w('10.0.0.5'))).toBe(false);
    t.remove('c', 'other');
    expect(t.namespaceOf(w('10.0.0.6'))).toBe('b');
    t.remove('kube-system', 'proxy');
    expect(t.hasPod(node, 'monitoring')).toBe(true);
    expect(t.namespaceOf(node)).toBeUndefined(); // still a hostNetwork pod's
    t.upsert('monitoring', 'exporter', [node], false);
    expect(t.namespaceOf(node)).toBe('monitoring');
  });

  it('reuses freed slots and grows past its first capacity', () => {
    const { t } = table();
    for (let i = 0; i < 100; i++) t.upsert('ns', `p${i}`, [i + 1], false);
    for (let i = 0; i < 100; i += 2) t.remove('ns', `p${i}`);
    for (let i = 0; i < 50; i++) t.upsert('ns2', `q${i}`, [1000 + i], false);
    expect(t.size).toBe(100);
    for (let i = 0; i < 100; i++) expect(t.hasPod(i + 1, 'ns')).toBe(i % 2 === 1);
    for (let i = 0; i < 50; i++) expect(t.namespaceOf(1000 + i)).toBe('ns2');
  });

  it('replaceAll keeps exactly the pods given', () => {
    const { t } = table();
    t.upsert('a', 'gone', [w('10.0.0.1')], false);
    t.upsert('a', 'kept', [w('10.0.0.2')], false);
    t.upsert('b', 'moved', [w('10.0.0.3'), 'fd00::3'], false);
    t.replaceAll((up) => {
      up('a', 'kept', [w('10.0.0.2')], false);
      up('b', 'moved', [w('10.0.0.4')], false);
      up('c', 'new', [w('10.0.0.5')], false);
    });
    expect(t.size).toBe(3);
    expect(t.has(w('10.0.0.1'))).toBe(false);
    expect(t.has(w('10.0.0.3'))).toBe(false);
    expect(t.has('fd00::3')).toBe(false);
    expect(t.namespaceOf(w('10.0.0.2'))).toBe('a');
    expect(t.namespaceOf(w('10.0.0.4'))).toBe('b');
    expect(t.namespaceOf(w('10.0.0.5'))).toBe('c');
    t.replaceAll(() => undefined);
    expect(t.size).toBe(0);
  });

  it('keeps IPv6-only and multi-address pods in its side maps', () => {
    const { t } = table();
    t.upsert('a', 'v6', ['fd00::1'], false);
    t.upsert('b', 'v6too', ['fd00::1'], false);
    t.upsert('a', 'two', [w('10.0.0.1'), w('10.0.0.2')], false);
    expect(t.namespaceOf('fd00::1')).toBeUndefined();
    expect(t.hasPod('fd00::1', 'b')).toBe(true);
    expect(t.namespaceOf(w('10.0.0.2'))).toBe('a');
    t.remove('a', 'v6');
    expect(t.namespaceOf('fd00::1')).toBe('b');
    t.remove('a', 'two');
    expect(t.has(w('10.0.0.2'))).toBe(false);
  });
});

describe('ipv4Word', () => {
  it('parses what normalizeIP accepts', () => {
    expect(ipv4Word('10.244.1.5')).toBe((10 << 24) | (244 << 16) | (1 << 8) | 5);
    expect(ipv4Word('255.255.255.255')).toBe(-1);
    expect(ipv4Word('0.0.0.0')).toBe(0);
    expect(ipv4Word('010.001.0.7')).toBe(ipv4Word('10.1.0.7'));
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '1.2.3.256', '1..2.3', '.1.2.3', '1.2.3.', '1.2.3.1000', '1.2.3.x', ' 1.2.3.4', 'fd00::1']) {
      expect(ipv4Word(bad), bad).toBeUndefined();
    }
  });
});
