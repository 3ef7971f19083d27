// Runs INSIDE a fresh network + mount namespace (`unshare -n -m`, started by test/e2e/searchpath.test.ts):
// clusterdns on 127.0.0.1:53 with a loopback upstream, the pod's resolv.conf bind-mounted over
// /etc/resolv.conf, and glibc (`getent hosts`) resolving names through it — once without and once with
// `autopath @kubernetes`. Prints one line `RESULT {json}` and exits; every child has a deadline.
//
// Safety: it refuses to run unless its network and mount namespaces differ from PID 1's and the only
// network interface is `lo`, and it makes every mount private before bind-mounting, so nothing leaks
// to the host and no packet can leave loopback.
//
//   node test/e2e/netns/searchpath.ts '{"cli":"/path/dist/src/cli.js"}'
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildQuery } from '../../../src/dns/build.ts';
import { Rcode, Type } from '../../../src/dns/types.ts';
import { udpExchange } from '../../client.ts';
import { startUpstream, type Upstream } from '../../upstream.ts';
import { type Lookup, lookupNames, type Result, type Run } from './result.ts';

const opts = JSON.parse(process.argv[2] ?? '{}') as {
  cli?: string;
  deadlineMs?: number;
  /** The caller's namespaces ("net:[4026531833]"), when our parent's cannot be read. */
  hostNs?: Record<string, string>;
};
const children = new Set<ChildProcess>();
let work: string | undefined;

function finish(r: Result): never {
  clearTimeout(watchdog);
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (work) rmSync(work, { recursive: true, force: true });
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
  process.exit(r.ok ? 0 : 1);
}

const watchdog = setTimeout(() => finish({ ok: false, error: `deadline of ${opts.deadlineMs ?? 60_000} ms passed` }), opts.deadlineMs ?? 60_000);
process.on('exit', () => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); });

function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const c = execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout, stderr) => {
      children.delete(c);
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, out: stdout + stderr });
    });
    children.add(c);
  });
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.out.trim()}`);
  return r.out;
}

/**
 * Refuse to touch anything unless we are in our own network and mount namespaces: ours must differ
 * from those of the process that ran `unshare` (which execs us, so it is our parent).
 */
async function checkIsolated(): Promise<void> {
  for (const ns of ['net', 'mnt']) {
    const mine = readlinkSync(`/proc/self/ns/${ns}`);
    let theirs: string | undefined;
    try { theirs = readlinkSync(`/proc/${process.ppid}/ns/${ns}`); } catch { theirs = opts.hostNs?.[ns]; }
    if (theirs === undefined) throw new Error(`cannot tell whether the ${ns} namespace is our own`);
    if (mine === theirs) throw new Error(`not in a separate ${ns} namespace: run me under unshare -n -m`);
  }
  const links = (await must('ip', ['-o', 'link', 'show'])).split('\n').filter(Boolean).map((l) => l.split(':')[1]!.trim());
  if (links.some((l) => l !== 'lo')) throw new Error(`network namespace has interfaces besides lo: ${links.join(', ')}`);
}

const manifests = {
  apiVersion: 'v1',
  kind: 'List',
  items: [
    ...['default', 'other-ns'].map((ns) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { 'kubernetes.io/metadata.name': ns } } })),
    ...([['default', '10.96.0.10'], ['other-ns', '10.96.0.20']] as const).map(([ns, ip]) => ({
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'my-svc', namespace: ns },
      spec: { type: 'ClusterIP', clusterIP: ip, clusterIPs: [ip], ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
    })),
    // The client: getent's queries come from 127.0.0.1 inside the namespace.
    { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'client', namespace: 'default' }, status: { phase: 'Running', podIP: '127.0.0.1', podIPs: [{ ip: '127.0.0.1' }] } },
  ],
};

function corefile(dir: string, upstream: Upstream, autopath: boolean): string {
  return `.:53 {
    bind 127.0.0.1
    errors
    log
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        manifests ${join(dir, 'cluster')}
        pods verified
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
${autopath ? '    autopath @kubernetes\n' : ''}    forward . ${upstream.addr}
    cache 30 {
        disable success cluster.local
        disable denial cluster.local
    }
    prometheus 127.0.0.1:9153
}
`;
}

/** Sum of a counter's samples by one label ("" when the metric has no such label). */
async function scrape(metric: string, label: string): Promise<Record<string, number>> {
  const res = await fetch('http://127.0.0.1:9153/metrics', { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric + '{') && !line.startsWith(metric + ' ')) continue;
    const m = new RegExp(`${label}="([^"]*)"`).exec(line);
    const key = m ? m[1]! : '';
    out[key] = (out[key] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return out;
}

async function startServer(dir: string, conf: string): Promise<{ proc: ChildProcess; output: () => string }> {
  const file = join(dir, 'Corefile');
  writeFileSync(file, conf);
  const proc = spawn(process.execPath, [opts.cli!, '-conf', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  // Ready when it answers a cluster name.
  const probe = buildQuery('my-svc.default.svc.cluster.local.', Type.A, { id: 7 });
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) throw new Error(`clusterdns exited (${proc.exitCode}):\n${out}`);
    const r = await udpExchange(53, probe, { timeoutMs: 200 }).catch(() => undefined);
    if (r && (r[3]! & 0xf) === Rcode.NOERROR && ((r[6]! << 8) | r[7]!) > 0) return { proc, output: () => out };
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`clusterdns did not answer within 10 s:\n${out}`);
}

async function stopServer(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
  children.delete(proc);
}

const logLine = /"(\S+) IN (\S+) (?:udp|tcp) \d+ \S+ \d+" (\S+)/;

async function measure(mode: Run['mode'], dir: string, upstream: Upstream): Promise<Run> {
  const server = await startServer(dir, corefile(dir, upstream, mode === 'autopath'));
  const out: Lookup[] = [];
  for (const name of lookupNames) {
    const before = await scrape('coredns_dns_requests_total', 'type');
    const upBefore = upstream.queries.length;
    const logBefore = server.output().length;
    const r = await run('getent', ['hosts', name]);
    await new Promise((res) => setTimeout(res, 150)); // let the query log reach us
    const after = await scrape('coredns_dns_requests_total', 'type');
    const queries: Record<string, number> = {};
    let total = 0;
    for (const [t, n] of Object.entries(after)) {
      const d = n - (before[t] ?? 0);
      if (d > 0) { queries[t] = d; total += d; }
    }
    const log = server.output().slice(logBefore).split('\n')
      .map((l) => logLine.exec(l)).filter((m) => m !== null).map((m) => `${m[1]} ${m[2]} ${m[3]}`);
    out.push({
      name, exit: r.code, output: r.out.trim(), total, queries, log,
      addresses: r.out.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[0]!),
      upstream: upstream.queries.slice(upBefore).map((q) => `${q.type === Type.AAAA ? 'AAAA' : q.type === Type.A ? 'A' : q.type} ${q.name}`),
    });
  }
  const success = await scrape('coredns_autopath_success_total', 'server');
  await stopServer(server.proc);
  return { mode, lookups: out, autopathSuccess: Object.values(success).reduce((a, b) => a + b, 0) };
}

async function main(): Promise<Result> {
  if (!opts.cli || !existsSync(opts.cli)) return { ok: false, error: `no built CLI at ${opts.cli}` };
  await checkIsolated();
  await must('ip', ['link', 'set', 'lo', 'up']);
  // Nothing we mount may propagate to the host's mount namespace.
  await must('mount', ['--make-rprivate', '/']);
  work = mkdtempSync(join(tmpdir(), 'clusterdns-searchpath-'));
  writeFileSync(join(work, 'resolv.conf'), 'nameserver 127.0.0.1\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 attempts:1 timeout:2\n');
  // glibc's dns module only: no nscd, systemd-resolved or mDNS daemon of the host gets asked.
  writeFileSync(join(work, 'nsswitch.conf'), 'hosts: files dns\n');
  writeFileSync(join(work, 'hosts'), '127.0.0.1 localhost\n');
  for (const f of ['resolv.conf', 'nsswitch.conf', 'hosts']) await must('mount', ['--bind', join(work, f), `/etc/${f}`]);
  for (const d of ['/run/nscd', '/var/run/nscd']) if (existsSync(d)) await must('mount', ['-t', 'tmpfs', 'tmpfs', d]);

  mkdirSync(join(work, 'cluster'));
  writeFileSync(join(work, 'cluster', 'objects.json'), JSON.stringify(manifests));

  const upstream = await startUpstream((q) => {
    if (q.name !== 'api.example.com.') return { rcode: Rcode.NXDOMAIN, authority: ['. 60 IN SOA a.root. nstld. 1 1800 900 604800 60'] };
    if (q.type === Type.A) return { answer: ['api.example.com. 60 IN A 203.0.113.10'] };
    return { authority: ['example.com. 60 IN SOA ns.example.com. hostmaster.example.com. 1 7200 3600 1209600 60'] };
  });
  try {
    const runs: Run[] = [];
    for (const mode of ['plain', 'autopath'] as const) runs.push(await measure(mode, work, upstream));
    return { ok: true, runs };
  } finally {
    await upstream.close();
  }
}

main().then(finish, (e: unknown) => finish({ ok: false, error: (e as Error).stack ?? String(e) }));
