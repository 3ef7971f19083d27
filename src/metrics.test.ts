import { describe, expect, it } from 'vitest';
import { Metrics, type RemoteMetrics } from './metrics.ts';

function populated(): Metrics {
  const m = new Metrics();
  m.counter('t_requests_total', 'Requests.', ['server']).labels('dns://:53').inc(3);
  m.gauge('t_queue', 'Queue "depth"\nper socket.', ['server']).labels('dns://:53').set(7);
  m.histogram('t_seconds', 'Durations.', ['type'], [0.001, 0.01]).labels('A').observe(0.005);
  m.fastCounter('t_fast_total', 'Fast counts.', ['rcode']).labels('NOERROR').value += 2;
  m.fastHistogram('t_fast_seconds', 'Fast durations.', ['type'], [0.001, 0.01]).labels('SRV').observe(0.0005);
  m.enableDefaults();
  return m;
}
// The values of process and runtime metrics move between two renderings; compare the rest.
const stable = (text: string) => text.split('\n').filter((l) => !/^(process_|nodejs_)/.test(l)).join('\n');

describe('Metrics.text', () => {
  it('renders what prom-client renders in one go, metric by metric', async () => {
    const m = populated();
    const ours = await m.text();
    expect(stable(ours)).toBe(stable(await m.registry.metrics()));
    expect(ours).toContain('t_fast_total{rcode="NOERROR"} 2');
    expect(ours).toContain('# HELP t_queue Queue "depth"\\nper socket.');
    expect(ours.endsWith('\n')).toBe(true);
  });

  it('lets other work run between metrics instead of holding the event loop for the whole scrape', async () => {
    const m = populated();
    let turns = 0;
    let stop = false;
    const spin = () => { if (stop) return; turns++; setImmediate(spin); };
    setImmediate(spin);
    await m.text();
    stop = true;
    // One turn per metric at least (the defaults alone are over 20 metrics).
    expect(turns).toBeGreaterThanOrEqual(m.registry.getMetricsAsArray().length - 1);
  });

  it('sums series across remote registries (workers), also rendered metric by metric', async () => {
    const m = new Metrics();
    m.counter('t_requests_total', 'Requests.', ['server']).labels('a').inc(3);
    const remote: RemoteMetrics = [{ name: 't_requests_total', help: 'Requests.', type: 'counter', aggregator: 'sum', values: [{ value: 4, labels: { server: 'a' } }] }];
    m.addRemote(async () => [remote]);
    expect(await m.text()).toBe('# HELP t_requests_total Requests.\n# TYPE t_requests_total counter\nt_requests_total{server="a"} 7\n');
  });
});
