// The worker side of the kubernetes plugin against main's zone service, over a real MessageChannel
// (the same structured cloning as between threads): hits need no call, a change to what a reply
// read makes it stale, misses ask main once per name.
import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Rcode, Type } from '../../src/dns/types.ts';
import { prebuild } from '../../src/dns/wire.ts';
import { DnsError, type LinkService } from '../../src/plugin.ts';
import { Rpc } from '../../src/server/rpc.ts';
import { makeRequest, serve, sortAndCheck } from '../../test/helpers.ts';
import { defaultConfig } from './config.ts';
import { KubernetesHandler } from './kubernetes.ts';
import type { SlimService } from './objects.ts';
import { RemoteKubernetesHandler, RemoteZone, zoneService, type ZoneCall } from './remote.ts';
import { SlotReader, SlotTable } from './slots.ts';
import { KubeZone } from './zone.ts';

const svc = (ns: string, name: string, ip: string): SlimService =>
  ({ namespace: ns, name, type: 'ClusterIP', clusterIPs: [ip], externalName: '', ports: [], publishNotReadyAddresses: false });

const closers: Array<() => void> = [];
afterEach(() => { for (const c of closers.splice(0)) c(); });

/** main: a zone and its service; worker: a RemoteZone calling it through a MessageChannel. */
function setup(opts: { cacheSize?: number; serviceWrap?: (s: LinkService) => LinkService } = {}) {
  const zone = new KubeZone({ pods: true });
  zone.upsertNamespace({ name: 'apps', labels: {} });
  zone.upsertService(svc('apps', 'web', '10.0.0.5'));
  zone.upsertService(svc('apps', 'db', '10.0.0.6'));
  zone.upsertPod({ namespace: 'apps', name: 'client', ips: ['10.244.0.7'] });
  const cfg = { ...defaultConfig(['cluster.local.']), pods: 'verified' as const };
  const local = new KubernetesHandler(cfg, zone, { prebuild, freeze: false });
  const table = new SlotTable(256);
  zone.shareChanges(table);
  table.setSynced(true);
  let service = zoneService(local, table);
  if (opts.serviceWrap) service = opts.serviceWrap(service);
  const { port1, port2 } = new MessageChannel();
  const mainSide = new Rpc(port1, (body) => service.handle(body));
  const workerSide = new Rpc(port2, () => undefined);
  closers.push(() => { mainSide.close(); workerSide.close(); port1.close(); });
  const remote = new RemoteZone(new SlotReader(service.shared!), (body: ZoneCall) => workerSide.call(body, 1000),
    { freeze: false, ...(opts.cacheSize !== undefined ? { cacheSize: opts.cacheSize } : {}) });
  const handler = new RemoteKubernetesHandler(cfg, remote);
  return { zone, remote, handler, table, local };
}

const ask = (h: RemoteKubernetesHandler, name: string, type = Type.A) => serve(h, makeRequest(name, type));

describe('RemoteZone (worker side of the kubernetes plugin)', () => {
  it('answers a miss through main, then hits without a call', async () => {
    const { remote, handler } = setup();
    const first = handler.reply('web.apps.svc.cluster.local.', Type.A);
    expect(first).toBeInstanceOf(Promise);
    sortAndCheck(await first, { rcode: Rcode.NOERROR, answer: ['web.apps.svc.cluster.local. 5 IN A 10.0.0.5'] });
    expect(remote.calls).toBe(1);
    const hit = handler.reply('web.apps.svc.cluster.local.', Type.A);
    expect(hit).not.toBeInstanceOf(Promise); // synchronous: no call, no promise
    expect((hit as Awaited<typeof first>).wire).toBeDefined(); // prebuilt bytes came along
    expect(remote.calls).toBe(1);
    expect(remote.cached).toBe(1);
  });

  it('a change to what a reply read makes it stale; unrelated changes do not', async () => {
    const { zone, remote, handler } = setup();
    await ask(handler, 'web.apps.svc.cluster.local.');
    await ask(handler, 'db.apps.svc.cluster.local.');
    expect(remote.calls).toBe(2);
    zone.upsertService(svc('apps', 'db', '10.0.0.66'));
    // web read only its own Service and namespace: still valid.
    expect(handler.reply('web.apps.svc.cluster.local.', Type.A)).not.toBeInstanceOf(Promise);
    sortAndCheck(await ask(handler, 'db.apps.svc.cluster.local.'), { rcode: Rcode.NOERROR, answer: ['db.apps.svc.cluster.local. 5 IN A 10.0.0.66'] });
    expect(remote.calls).toBe(3);
  });

  it('negative answers depend on the whole zone', async () => {
    const { zone, handler, remote } = setup();
    sortAndCheck(await ask(handler, 'new.apps.svc.cluster.local.'), { rcode: Rcode.NXDOMAIN });
    expect(handler.reply('new.apps.svc.cluster.local.', Type.A)).not.toBeInstanceOf(Promise);
    zone.upsertService(svc('apps', 'new', '10.0.0.9'));
    sortAndCheck(await ask(handler, 'new.apps.svc.cluster.local.'), { rcode: Rcode.NOERROR, answer: ['new.apps.svc.cluster.local. 5 IN A 10.0.0.9'] });
    expect(remote.calls).toBe(2);
  });

  it('gets the same reply as the local handler, prebuilt bytes included', async () => {
    const { handler, local } = setup();
    for (const [name, type] of [['web.apps.svc.cluster.local.', Type.A], ['nope.apps.svc.cluster.local.', Type.A], ['cluster.local.', Type.SOA],
      ['10-244-0-7.apps.pod.cluster.local.', Type.A], ['apps.svc.cluster.local.', Type.TXT], ['dns-version.cluster.local.', Type.TXT]] as const) {
      expect(await handler.reply(name, type)).toEqual(local.reply(name, type));
    }
  });

  it('misses of one event loop turn go to main in one call', async () => {
    const { handler, remote } = setup();
    const names = ['web', 'db', 'nope', 'web', 'other'].map((n) => `${n}.apps.svc.cluster.local.`);
    const all = await Promise.all(names.map((n) => ask(handler, n)));
    expect(all.map((m) => m.rcode)).toEqual([Rcode.NOERROR, Rcode.NOERROR, Rcode.NXDOMAIN, Rcode.NOERROR, Rcode.NXDOMAIN]);
    expect(remote.calls).toBe(1);
    expect(remote.cached).toBe(4);
  });

  it('one call for a burst of misses on the same name', async () => {
    const { handler, remote } = setup();
    const all = await Promise.all(Array.from({ length: 20 }, () => ask(handler, 'web.apps.svc.cluster.local.')));
    expect(all.every((m) => m.rcode === Rcode.NOERROR)).toBe(true);
    expect(remote.calls).toBe(1);
  });

  it('keeps its cache bounded', async () => {
    const { remote, handler } = setup({ cacheSize: 3 });
    for (let i = 0; i < 10; i++) await ask(handler, `n${i}.apps.svc.cluster.local.`);
    expect(remote.cached).toBeLessThanOrEqual(3);
  });

  it('fails with SERVFAIL when main does not answer', async () => {
    const { handler } = setup({ serviceWrap: (s) => ({ ...s, handle: () => { throw new Error('main is gone'); } }) });
    const err = await ask(handler, 'web.apps.svc.cluster.local.').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DnsError);
    expect((err as DnsError).rcode).toBe(Rcode.SERVFAIL);
  });

  it('keeps the client letter case and the not-synced SERVFAIL of the local handler', async () => {
    const { handler, table } = setup();
    const m = await ask(handler, 'WEB.apps.svc.cluster.local.');
    expect(m.rcode).toBe(Rcode.NOERROR);
    table.setSynced(false);
    sortAndCheck(await ask(handler, 'nope.apps.svc.cluster.local.'), { rcode: Rcode.SERVFAIL });
  });

  it('knows pod namespaces for autopath after one background call, and forgets them on change', async () => {
    const { zone, remote } = setup();
    expect(remote.namespaceOfIP('10.244.0.7')).toBeUndefined(); // not known yet: autopath stays out
    await expect.poll(() => remote.namespaceOfIP('10.244.0.7')).toBe('apps');
    zone.deletePod('apps', 'client');
    expect(remote.namespaceOfIP('10.244.0.7')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 20));
    expect(remote.namespaceOfIP('10.244.0.7')).toBeUndefined();
  });

  it('reply memo: a reply is current while the shared slots of its stamp are (a small object, no reply)', async () => {
    const { zone, handler, table } = setup();
    const asked = async (name: string) => {
      const req = makeRequest(name, Type.A);
      await serve(handler, req);
      return req;
    };
    const web = await asked('web.apps.svc.cluster.local.'); // through main
    const webHit = await asked('WEB.apps.svc.cluster.local.'); // from the worker's cache
    const db = await asked('db.apps.svc.cluster.local.');
    for (const r of [web, webHit, db]) {
      expect(r.memoOff).toBe(false);
      expect(r.memoDep?.valid()).toBe(true);
    }
    expect('msg' in web.memoDep!).toBe(false);
    zone.upsertService(svc('apps', 'db', '10.0.0.66'));
    expect(db.memoDep!.valid()).toBe(false);
    expect(web.memoDep!.valid()).toBe(true);
    expect(webHit.memoDep!.valid()).toBe(true);
    table.newEpoch(); // every stamp handed out so far
    expect(web.memoDep!.valid()).toBe(false);
    expect(webHit.memoDep!.valid()).toBe(false);
    table.setSynced(false);
    const nx = await asked('nope.apps.svc.cluster.local.');
    expect(nx.memoOff).toBe(true);
    expect(nx.memoDep).toBeUndefined();
  });

  it('bounds the names waiting for main: a miss beyond the bound is SERVFAIL at once, counted', async () => {
    let shed = 0;
    // main never answers (a flood it cannot follow); nothing times out within the test.
    const never = () => new Promise<unknown>(() => undefined);
    const remote = new RemoteZone(new SlotReader(new SlotTable(16).buffer), never, { freeze: false, maxWaiting: 3, onShed: () => shed++ });
    const waiting = ['a', 'b', 'c'].map((n) => remote.answer(`${n}.apps.svc.cluster.local.`, Type.A));
    for (const w of waiting) expect(w).toBeInstanceOf(Promise);
    // The same name joins the question already waiting: no shedding.
    expect(remote.answer('a.apps.svc.cluster.local.', Type.A)).toBe(waiting[0]);
    expect(shed).toBe(0);
    let err: unknown;
    try { remote.reply('d.apps.svc.cluster.local.', Type.A); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(DnsError);
    expect((err as DnsError).rcode).toBe(Rcode.SERVFAIL);
    expect(shed).toBe(1);
  });
});
