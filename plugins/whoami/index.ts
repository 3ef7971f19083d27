import { definePlugin } from '../../src/plugin.ts';
import { Whoami } from './whoami.ts';

export { Whoami } from './whoami.ts';

/** whoami: tell clients the address, port and transport they query from. No options. */
export const plugin = definePlugin<Record<string, never>>({
  name: 'whoami',
  parse(c) {
    c.expectArgs(0);
    c.noBlock();
    return {};
  },
  setup() {
    return new Whoami();
  },
});
