// Every Corefile example in every plugin README must parse and pass its plugins' own validation.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCorefile } from '../src/corefile/parser.ts';
import { buildPlan } from '../src/config.ts';
import { lookupPlugin } from '../src/directives.ts';

const root = resolve(import.meta.dirname, '..');
const pluginsDir = join(root, 'plugins');

/** Fenced blocks tagged corefile (``` or ~~~). */
export function corefileExamples(markdown: string): string[] {
  const out: string[] = [];
  const re = /^(```|~~~)\s*corefile\s*\n([\s\S]*?)^\1\s*$/gm;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) out.push(m[2]!);
  return out;
}

const readmes = readdirSync(pluginsDir)
  .filter((d) => existsSync(join(pluginsDir, d, 'README.md')))
  .map((d) => ({ plugin: d, path: join(pluginsDir, d, 'README.md') }));

describe('plugin READMEs', () => {
  it('every plugin folder has a README with the standard sections', () => {
    for (const dir of readdirSync(pluginsDir)) {
      if (!lookupPlugin(dir)) continue;
      const p = join(pluginsDir, dir, 'README.md');
      expect(existsSync(p), `${dir} has no README.md`).toBe(true);
      const text = readFileSync(p, 'utf8');
      for (const section of ['## Name', '## Description', '## Syntax', '## Examples', '## Metrics']) {
        expect(text, `${dir}/README.md lacks ${section}`).toContain(section);
      }
    }
  });

  for (const { plugin, path } of readmes) {
    const examples = corefileExamples(readFileSync(path, 'utf8'));
    it(`${plugin}: has Corefile examples`, () => {
      if (lookupPlugin(plugin)) expect(examples.length).toBeGreaterThan(0);
    });
    examples.forEach((text, i) => {
      it(`${plugin}: example ${i + 1} parses`, () => {
        const corefile = parseCorefile(text, { file: `${plugin}/README.md#${i + 1}`, env: { ...process.env } });
        expect(() => buildPlan(corefile, { defaultPort: 53 })).not.toThrow();
      });
    });
  }
});
