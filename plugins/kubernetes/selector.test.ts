import { describe, expect, it } from 'vitest';
import { matches, parseSelector } from './selector.ts';

describe('parseSelector', () => {
  it('parses every operator', () => {
    expect(parseSelector(' app = web , tier==front,env!=prod, zone in (a, b), region notin (x), canary, !legacy, gen>2, rank<10 ').requirements).toEqual([
      { key: 'app', op: 'eq', values: ['web'] },
      { key: 'tier', op: 'eq', values: ['front'] },
      { key: 'env', op: 'neq', values: ['prod'] },
      { key: 'zone', op: 'in', values: ['a', 'b'] },
      { key: 'region', op: 'notin', values: ['x'] },
      { key: 'canary', op: 'exists', values: [] },
      { key: 'legacy', op: 'notexists', values: [] },
      { key: 'gen', op: 'gt', values: ['2'] },
      { key: 'rank', op: 'lt', values: ['10'] },
    ]);
  });

  it('accepts prefixed keys, empty values and the empty selector', () => {
    expect(parseSelector('kubernetes.io/metadata.name=kube-system').requirements[0]).toEqual({ key: 'kubernetes.io/metadata.name', op: 'eq', values: ['kube-system'] });
    expect(parseSelector('a=').requirements[0]).toEqual({ key: 'a', op: 'eq', values: [''] });
    expect(parseSelector('a in (x,)').requirements[0]!.values).toEqual(['x', '']);
    expect(parseSelector('').requirements).toEqual([]);
    expect(parseSelector('   ').requirements).toEqual([]);
  });

  it.each([
    ['a in ()', /needs at least one value/],
    ['a in (x', /expected ',' or '\)'/],
    ['a in x', /expected '\(' after 'in'/],
    ['a b', /expected an operator after "a"/],
    ['a=b c', /expected ',' or end of input/],
    ['a=b,', /expected a label key, found end of input/],
    [',a', /expected a label key, found ','/],
    ['!', /expected a label key/],
    ['!a=b', /expected ',' or end of input/],
    ['a>b', /'>' needs an integer/],
    ['a<', /expected a number after '<'/],
    ['a=b$', /unexpected character '\$'/],
    ['-a=b', /invalid label key "-a"/],
    ['Foo.com/a=b', /invalid label key prefix "Foo.com"/],
    [`a=${'x'.repeat(64)}`, /invalid label value/],
    ['a=b/c', /invalid label value "b\/c"/],
  ])('rejects %s', (expr, msg) => {
    expect(() => parseSelector(expr)).toThrow(msg);
    expect(() => parseSelector(expr)).toThrow(/^invalid label selector/);
  });
});

describe('matches', () => {
  const labels = { app: 'web', tier: 'front', gen: '3' };
  it.each([
    ['', true],
    ['app=web', true],
    ['app==api', false],
    ['app!=api', true],
    ['missing!=x', true],
    ['app in (api, web)', true],
    ['app in (api)', false],
    ['missing in (x)', false],
    ['app notin (api)', true],
    ['app notin (web)', false],
    ['missing notin (x)', true],
    ['tier', true],
    ['missing', false],
    ['!missing', true],
    ['!tier', false],
    ['gen>2', true],
    ['gen<3', false],
    ['app>1', false],
    ['missing<5', false],
    ['app=web,tier=front', true],
    ['app=web,tier=back', false],
  ])('%s → %s', (expr, want) => {
    expect(matches(parseSelector(expr), labels)).toBe(want);
  });

  it('treats missing labels as empty', () => {
    expect(matches(parseSelector('!a'), undefined)).toBe(true);
    expect(matches(parseSelector('a'), null)).toBe(false);
    // Inherited properties are not labels.
    expect(matches(parseSelector('constructor'), {})).toBe(false);
  });
});
