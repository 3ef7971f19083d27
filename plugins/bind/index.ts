import { isIP } from 'node:net';
import { definePlugin } from '../../src/plugin.ts';

export interface BindConfig {
  /** Addresses to listen on (IPs; interface names are not supported). */
  addresses: string[];
  /** Addresses to leave out. */
  except: string[];
}

/**
 * bind: which addresses the block's listeners use. It has no handler: the server reads the config
 * when it groups blocks into listeners (src/config.ts).
 */
export const plugin = definePlugin<BindConfig>({
  name: 'bind',
  multiple: true,
  parse(c) {
    const addresses: string[] = [];
    const except: string[] = [];
    let inExcept = false;
    for (const t of c.argTokens) {
      if (t.text === 'except') { inExcept = true; continue; }
      const ip = t.text.replace(/^\[|\]$/g, '');
      if (!isIP(ip)) throw c.err(`not a valid IP address: '${t.text}' (interface names are not supported)`, t);
      (inExcept ? except : addresses).push(ip);
    }
    for (const line of c.lines()) {
      if (line.name !== 'except') throw line.unknownProperty();
      for (const t of line.argTokens) {
        const ip = t.text.replace(/^\[|\]$/g, '');
        if (!isIP(ip)) throw line.err(`not a valid IP address: '${t.text}'`, t);
        except.push(ip);
      }
    }
    if (addresses.length === 0) throw c.argErr();
    return { addresses, except };
  },
  setup() { return undefined; },
});
