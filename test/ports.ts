// Ports for tests that need a fixed number before they bind (a Corefile names its port, a child
// process is told one). Test files run in parallel, so a random pick from one shared range can land on
// a port another file holds (CI once failed that way: EADDRINUSE). Each vitest worker therefore draws
// from its own slice of 20000-31999 (below the kernel's ephemeral range, so no outgoing connection
// holds one), stepping through it rather than drawing at random; `retryOnAddrInUse` covers what is
// left (a process outside the tests, a wrapped slice).

const LOW = 20000;
const SLICES = 12;
const SPAN = 1000; // 12 slices × 1000 = 20000-31999

const slice = (Number(process.env['VITEST_POOL_ID'] ?? process.pid) || 0) % SLICES;
let next = Math.floor(Math.random() * SPAN);

/** A port from this worker's slice, a different one on each call (until the slice wraps). */
export function pickPort(): number {
  const port = LOW + slice * SPAN + (next % SPAN);
  next++;
  return port;
}

/** Run `start` (which picks its own ports) again, up to `attempts` times, while it fails with EADDRINUSE. */
export async function retryOnAddrInUse<T>(start: () => Promise<T>, attempts = 6): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (e) {
      const inUse = (e as NodeJS.ErrnoException).code === 'EADDRINUSE' || /EADDRINUSE/.test(String(e));
      if (!inUse || attempt >= attempts) throw e;
    }
  }
}
