import { describe, expect, it } from 'vitest';
import { pickPort, retryOnAddrInUse } from './ports.ts';

describe('test ports', () => {
  it('steps through one slice of 20000-31999: distinct ports, below the ephemeral range', () => {
    const ports = Array.from({ length: 200 }, pickPort);
    expect(new Set(ports).size).toBe(200);
    for (const p of ports) expect(p >= 20000 && p < 32000).toBe(true);
    const slices = new Set(ports.map((p) => Math.floor((p - 20000) / 1000)));
    expect(slices.size).toBe(1);
  });

  it('retries only EADDRINUSE, and gives up after the attempts', async () => {
    let n = 0;
    const inUse = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' });
    await expect(retryOnAddrInUse(async () => { if (++n < 3) throw inUse; return n; })).resolves.toBe(3);
    n = 0;
    await expect(retryOnAddrInUse(async () => { n++; throw inUse; }, 4)).rejects.toThrow('EADDRINUSE');
    expect(n).toBe(4);
    n = 0;
    await expect(retryOnAddrInUse(async () => { n++; throw new Error('EACCES'); })).rejects.toThrow('EACCES');
    expect(n).toBe(1);
  });
});
