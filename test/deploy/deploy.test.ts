// The deployment files under deploy/: every manifest parses, validates against the Kubernetes
// OpenAPI schemas (kubernetes-models) and type-checks strictly (an unknown field is an error, as it
// is for `kubectl apply`), every kustomization lists files that exist, and each requirement of the
// cluster DNS, node-local cache, autoscaler and container build is asserted one by one.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { loadAll } from 'js-yaml';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import type { IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import type { IRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import type { IHorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { parseCorefile } from '../../src/corefile/parser.ts';
import { parseDuration } from '../../src/corefile/duration.ts';
import type { Corefile, Directive } from '../../src/corefile/types.ts';
import { buildPlan } from '../../src/config.ts';
import { kubeadmCorefile } from '../fixtures/kubeadm.ts';

const root = resolve(import.meta.dirname, '../..');
const deployDir = join(root, 'deploy');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

// ---------------------------------------------------------------------------------------------
// Loading

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

interface Loaded { file: string; index: number; obj: Manifest }

interface Kustomization {
  apiVersion: string;
  kind: 'Kustomization';
  resources?: string[];
  images?: Array<{ name: string; newName?: string; newTag?: string }>;
  [field: string]: unknown;
}

function yamlDocs(file: string): unknown[] {
  return loadAll(readFileSync(file, 'utf8')).filter((d) => d !== null && d !== undefined);
}

function loadKustomization(dir: string): Kustomization {
  const [k] = yamlDocs(join(dir, 'kustomization.yaml')) as Kustomization[];
  return k!;
}

/** Every object a kustomization directory produces (following directory resources), in order. */
function loadKustomize(dir: string): Loaded[] {
  const out: Loaded[] = [];
  for (const r of loadKustomization(dir).resources ?? []) {
    const p = resolve(dir, r);
    if (statSync(p).isDirectory()) out.push(...loadKustomize(p));
    else yamlDocs(p).forEach((obj, index) => out.push({ file: relative(root, p), index, obj: obj as Manifest }));
  }
  return out;
}

/** Every YAML document of every .yaml file under deploy/<dir> (examples included), except kustomizations. */
function loadDir(dir: string): Loaded[] {
  const abs = join(deployDir, dir);
  return readdirSync(abs).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort()
    .flatMap((f) => yamlDocs(join(abs, f)).map((obj, index) => ({ file: `deploy/${dir}/${f}`, index, obj: obj as Manifest })));
}

const kustomizeDirs = ['kubernetes', 'node-local', 'autoscaler'];
const everything = kustomizeDirs.flatMap(loadDir);

function pick<T>(objs: Loaded[], kind: string, name: string): T {
  const found = objs.filter((o) => o.obj.kind === kind && o.obj.metadata.name === name);
  expect(found, `${kind}/${name}`).toHaveLength(1);
  return found[0]!.obj as unknown as T;
}

// ---------------------------------------------------------------------------------------------
// Schema validation: runtime JSON-schema checks plus a strict compile (excess properties).

/** kubernetes-models module for an apiVersion/kind: "apps/v1" + "Deployment" → kubernetes-models/apps/v1/Deployment. */
function modelPath(apiVersion: string, kind: string): string {
  return `kubernetes-models/${apiVersion}/${kind}`;
}

interface ModelClass { new (data: unknown): { validate(): void } }

async function schemaErrors(m: Manifest): Promise<string | undefined> {
  const mod = await import(modelPath(m.apiVersion, m.kind)) as Record<string, ModelClass | undefined>;
  const Model = mod[m.kind];
  if (!Model) return `no model for ${m.apiVersion} ${m.kind}`;
  try {
    new Model(m).validate();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Type-check each manifest as an object literal of its kubernetes-models interface: the JSON
 * schemas accept unknown fields, TypeScript's excess-property check does not, so a misspelt field
 * (`topologySpreadConstraint`) fails here instead of at `kubectl apply` time.
 */
function strictTypeErrors(items: Loaded[]): string[] {
  const files = new Map<string, { text: string; label: string }>();
  items.forEach(({ file, index, obj }, i) => {
    const name = join(root, 'test/deploy', `.manifest-check-${i}.ts`);
    const text = `import type { I${obj.kind} as T } from '${modelPath(obj.apiVersion, obj.kind)}';\n` +
      `export const manifest: T = ${JSON.stringify(obj, null, 2)};\n`;
    files.set(name, { text, label: `${file}#${index + 1} (${obj.kind}/${obj.metadata.name})` });
  });
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022,
    strict: true, noEmit: true, skipLibCheck: true, types: [], lib: ['lib.es2022.d.ts'],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.getSourceFile = (f, lang, ...rest) => {
    const v = files.get(f);
    return v ? ts.createSourceFile(f, v.text, lang) : getSourceFile(f, lang, ...rest);
  };
  host.fileExists = (f) => files.has(f) || fileExists(f);
  host.readFile = (f) => files.get(f)?.text ?? readFile(f);
  const program = ts.createProgram([...files.keys()], options, host);
  const errors: string[] = [];
  for (const [f, { label }] of files) {
    for (const d of ts.getPreEmitDiagnostics(program, program.getSourceFile(f))) {
      errors.push(`${label}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    }
  }
  return errors;
}

describe('deploy/: every manifest', () => {
  it('parses: each file holds Kubernetes objects with apiVersion, kind and metadata.name', () => {
    expect(everything.length).toBeGreaterThan(10);
    for (const { file, obj } of everything) {
      expect(typeof obj.apiVersion, file).toBe('string');
      expect(typeof obj.kind, file).toBe('string');
      expect(obj.metadata?.name, file).toBeTruthy();
    }
  });

  it('validates against the Kubernetes OpenAPI schema of its apiVersion (kubernetes-models)', async () => {
    const errors: string[] = [];
    for (const { file, index, obj } of everything) {
      const e = await schemaErrors(obj);
      if (e) errors.push(`${file}#${index + 1}: ${e}`);
    }
    expect(errors).toEqual([]);
  });

  it('has no unknown fields (strict type check against the same API types)', () => {
    expect(strictTypeErrors(everything)).toEqual([]);
  });

  it('the strict check catches a misspelt field and the schema check a wrong type', async () => {
    const dep = structuredClone(pick<IDeployment>(everything, 'Deployment', 'clusterdns')) as unknown as Manifest;
    const spec = (dep.spec as { template: { spec: Record<string, unknown> } }).template.spec;
    spec.topologySpreadConstraint = spec.topologySpreadConstraints;
    expect(strictTypeErrors([{ file: 'mutated', index: 0, obj: dep }]).join('\n')).toMatch(/topologySpreadConstraint/);
    spec.terminationGracePeriodSeconds = 'thirty';
    expect(await schemaErrors(dep)).toMatch(/terminationGracePeriodSeconds/);
  });

  it('namespaced objects live in kube-system, next to the kube-dns Service', () => {
    const clusterScoped = new Set(['ClusterRole', 'ClusterRoleBinding', 'Namespace']);
    for (const { file, obj } of everything) {
      if (clusterScoped.has(obj.kind)) expect(obj.metadata.namespace, file).toBeUndefined();
      else expect(obj.metadata.namespace, `${file} ${obj.kind}/${obj.metadata.name}`).toBe('kube-system');
    }
  });

  it('no two objects share a kind and name', () => {
    const seen = new Set<string>();
    for (const { file, obj } of everything) {
      const id = `${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
      expect(seen.has(id), `${file}: ${id} defined twice`).toBe(false);
      seen.add(id);
    }
  });
});

describe('deploy/: kustomizations', () => {
  for (const dir of kustomizeDirs) {
    it(`${dir}: every resource exists, and every manifest in the folder is listed (or is an *-example)`, () => {
      const abs = join(deployDir, dir);
      const k = loadKustomization(abs);
      expect(k.apiVersion).toBe('kustomize.config.k8s.io/v1beta1');
      expect(k.kind).toBe('Kustomization');
      const resources = k.resources ?? [];
      expect(resources.length).toBeGreaterThan(0);
      for (const r of resources) {
        const p = resolve(abs, r);
        expect(existsSync(p), `${dir}/kustomization.yaml lists ${r}, which does not exist`).toBe(true);
        if (statSync(p).isDirectory()) expect(existsSync(join(p, 'kustomization.yaml')), `${r} has no kustomization.yaml`).toBe(true);
      }
      const listed = new Set(resources.map((r) => resolve(abs, r)));
      for (const f of readdirSync(abs).filter((x) => x.endsWith('.yaml') && x !== 'kustomization.yaml')) {
        if (f.endsWith('-example.yaml')) expect(listed.has(join(abs, f)), `${f} is an example and must not be applied`).toBe(false);
        else expect(listed.has(join(abs, f)), `${dir}/${f} is not in kustomization.yaml`).toBe(true);
      }
    });

    it(`${dir}: image overrides name images the manifests use, at the package version`, () => {
      const k = loadKustomization(join(deployDir, dir));
      const images = loadKustomize(join(deployDir, dir)).flatMap(({ obj }) => containersOf(obj)).map((c) => c.image!);
      for (const img of k.images ?? []) {
        expect(images.some((i) => i.split(':')[0] === img.name), `images: ${img.name} is used by no container`).toBe(true);
        if (img.name === 'clusterdns') expect(img.newTag).toBe(pkg.version);
      }
      for (const i of images.filter((x) => x.startsWith('clusterdns:'))) expect(i).toBe(`clusterdns:${pkg.version}`);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Helpers over pod specs and Corefiles

function containersOf(obj: Manifest): IContainer[] {
  const spec = (obj.spec as { template?: { spec?: IPodSpec } } | undefined)?.template?.spec;
  return spec ? [...(spec.initContainers ?? []), ...spec.containers] : [];
}

/** Bytes of a Kubernetes quantity ("272Mi", "1Gi", "500M"). */
function bytes(q: string | number | undefined): number {
  if (q === undefined) return NaN;
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q));
  if (!m) return NaN;
  const mult: Record<string, number> = { '': 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * mult[m[2] ?? '']!;
}

function envOf(c: IContainer, name: string): string | undefined {
  return c.env?.find((e) => e.name === name)?.value;
}

/** The number a probe's port names, resolving named container ports. */
function probePort(c: IContainer, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return c.ports?.find((p) => p.name === port)?.containerPort;
}

function matches(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

function corefileOf(cm: IConfigMap, env: Record<string, string> = {}): { text: string; parsed: Corefile } {
  const text = cm.data?.Corefile;
  expect(text, `ConfigMap ${cm.metadata?.name} has a Corefile`).toBeTruthy();
  return { text: text!, parsed: parseCorefile(text!, { file: `ConfigMap/${cm.metadata?.name}`, env }) };
}

function directives(cf: Corefile, name: string): Directive[] {
  return cf.blocks.flatMap((b) => b.directives.filter((d) => d.name.text === name));
}

function subLines(d: Directive, name: string): Directive[] {
  return (d.block ?? []).filter((l) => l.name.text === name);
}

/** The longest lameduck any health directive asks for, in ms (0 without one). */
function lameduckMs(cf: Corefile): number {
  let ms = 0;
  for (const h of directives(cf, 'health')) {
    for (const l of subLines(h, 'lameduck')) ms = Math.max(ms, parseDuration(l.args[0]!.text) ?? NaN);
  }
  return ms;
}

type Rule = `${string}|${string}|${string}`; // apiGroup|resource|verb

/**
 * What the API watches of a Corefile need, as apiGroup|resource|verb: the kubernetes plugin lists
 * and watches Services, EndpointSlices and Namespaces; Pods only with `pods verified`, or when
 * `autopath @kubernetes` needs pod → namespace lookups. Nothing else reads the API.
 */
function requiredRules(cf: Corefile): Set<Rule> {
  const out = new Set<Rule>();
  const add = (group: string, resource: string) => { for (const v of ['list', 'watch']) out.add(`${group}|${resource}|${v}`); };
  const kube = directives(cf, 'kubernetes');
  if (kube.length === 0) return out;
  add('', 'services');
  add('', 'namespaces');
  add('discovery.k8s.io', 'endpointslices');
  const verified = kube.some((k) => subLines(k, 'pods').some((l) => l.args[0]?.text === 'verified'));
  const autopath = directives(cf, 'autopath').some((a) => a.args.some((t) => t.text === '@kubernetes'));
  if (verified || autopath) add('', 'pods');
  return out;
}

function grantedRules(role: IClusterRole | IRole): Set<Rule> {
  const out = new Set<Rule>();
  for (const r of role.rules ?? []) {
    expect(r.nonResourceURLs ?? [], 'no non-resource URLs').toEqual([]);
    for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) for (const v of r.verbs) out.add(`${g}|${res}|${v}`);
  }
  return out;
}

/** The pod-level checks shared by the cluster DNS Deployment and the node-local DaemonSet. */
function checkHardenedDnsPod(spec: IPodSpec, corefile: Corefile): void {
  const [c, ...more] = spec.containers;
  expect(more).toEqual([]);
  // dnsPolicy Default: the DNS server resolves upstream names through the node, not through itself.
  expect(spec.dnsPolicy).toBe('Default');
  expect(spec.hostNetwork ?? false).toBe(false);
  expect(c!.args).toEqual(['-conf', '/etc/coredns/Corefile']);
  const mount = c!.volumeMounts?.find((m) => m.mountPath === '/etc/coredns');
  expect(mount?.readOnly).toBe(true);
  const vol = spec.volumes?.find((v) => v.name === mount?.name);
  expect(vol?.configMap?.items).toEqual([{ key: 'Corefile', path: 'Corefile' }]);

  // Ports and probes.
  const ports = (c!.ports ?? []).map((p) => `${p.name}:${p.containerPort}/${p.protocol ?? 'TCP'}`);
  expect(ports).toEqual(expect.arrayContaining(['dns:53/UDP', 'dns-tcp:53/TCP', 'metrics:9153/TCP']));
  for (const p of c!.ports ?? []) expect(p.hostPort, `${p.name} takes no host port`).toBeUndefined();
  expect(c!.livenessProbe?.httpGet?.path).toBe('/health');
  expect(probePort(c!, c!.livenessProbe?.httpGet?.port)).toBe(8080);
  expect(c!.readinessProbe?.httpGet?.path).toBe('/ready');
  expect(probePort(c!, c!.readinessProbe?.httpGet?.port)).toBe(8181);
  // The Corefile serves what the probes ask for.
  expect(directives(corefile, 'health').length).toBeGreaterThan(0);
  expect(directives(corefile, 'ready').length).toBeGreaterThan(0);
  expect(directives(corefile, 'prometheus').some((d) => d.args[0]?.text === ':9153')).toBe(true);

  // Resources: requests for both, a memory limit, no CPU limit (throttling a DNS server costs latency).
  const res = c!.resources;
  expect(res?.requests?.cpu).toBeTruthy();
  expect(bytes(res?.requests?.memory)).toBeGreaterThan(0);
  const limit = bytes(res?.limits?.memory);
  expect(limit).toBeGreaterThanOrEqual(bytes(res?.requests?.memory));
  expect(res?.limits?.cpu).toBeUndefined();
  // The V8 old space is capped below the container limit, leaving the young generation (3 semi-spaces:
  // --max-semi-space-size, else V8's 16 MiB) and the non-heap memory (node binary, code, buffers, the
  // Kubernetes client: ~62 MiB measured for the Deployment) room.
  const nodeOptions = envOf(c!, 'NODE_OPTIONS') ?? '';
  const heap = /--max-old-space-size=(\d+)/.exec(nodeOptions);
  expect(heap, 'NODE_OPTIONS sets --max-old-space-size').toBeTruthy();
  const heapBytes = Number(heap![1]) * 2 ** 20;
  const semiSpace = Number(/--max-semi-space-size=(\d+)/.exec(nodeOptions)?.[1] ?? 16);
  expect(heapBytes).toBeLessThan(limit);
  expect(limit - heapBytes).toBeGreaterThanOrEqual((3 * semiSpace + 64) * 2 ** 20);

  // Security: non-root, nothing to escalate, no capability, read-only root, seccomp.
  const psc = spec.securityContext ?? {};
  const csc = c!.securityContext ?? {};
  expect(csc.runAsNonRoot ?? psc.runAsNonRoot).toBe(true);
  const uid = csc.runAsUser ?? psc.runAsUser;
  expect(uid).toBeGreaterThan(0);
  expect(csc.allowPrivilegeEscalation).toBe(false);
  expect(csc.privileged ?? false).toBe(false);
  expect(csc.capabilities?.drop).toEqual(['ALL']);
  expect(csc.capabilities?.add ?? []).toEqual([]);
  expect(csc.readOnlyRootFilesystem).toBe(true);
  expect((csc.seccompProfile ?? psc.seccompProfile)?.type).toBe('RuntimeDefault');
  // Port 53 without NET_BIND_SERVICE: the namespaced sysctl makes it unprivileged in this pod.
  const sysctl = psc.sysctls?.find((s) => s.name === 'net.ipv4.ip_unprivileged_port_start');
  expect(Number(sysctl?.value)).toBeLessThanOrEqual(53);

  // Rollout: the grace period covers lameduck + drain (forward's 5 s per-query budget, which is
  // also the server's listener drain) + 2 s to exit.
  const lameduck = lameduckMs(corefile);
  expect(lameduck).toBeGreaterThan(0);
  expect((spec.terminationGracePeriodSeconds ?? 30) * 1000).toBeGreaterThanOrEqual(lameduck + 5000 + 2000);
}

// ---------------------------------------------------------------------------------------------
// The cluster DNS


describe('deploy/kubernetes: the cluster DNS', () => {
  const objs = loadKustomize(join(deployDir, 'kubernetes'));
  const dep = pick<IDeployment>(objs, 'Deployment', 'clusterdns');
  const spec = dep.spec!.template.spec!;
  const cm = pick<IConfigMap>(objs, 'ConfigMap', 'clusterdns');
  const svc = pick<IService>(objs, 'Service', 'kube-dns');
  const { text: corefileText, parsed: corefile } = corefileOf(cm);
  const podLabels = dep.spec!.template.metadata!.labels!;

  it('holds ServiceAccount, ClusterRole, ClusterRoleBinding, ConfigMap, Deployment, Service and PodDisruptionBudget', () => {
    expect(objs.map((o) => o.obj.kind).sort()).toEqual(
      ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
  });

  it('the ConfigMap holds the Corefile kubeadm writes (cluster.local)', () => {
    const norm = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean).join('\n');
    expect(norm(corefileText)).toBe(norm(kubeadmCorefile));
  });

  it('the Corefile parses and plans with the server\'s own parser (needs every plugin registered)', () => {
    const plan = buildPlan(parseCorefile(corefileText, { file: 'ConfigMap/clusterdns' }), { defaultPort: 53 });
    expect(plan.listeners.map((l) => l.port)).toEqual([53]);
  });

  it('Deployment: 2+ replicas, critical priority, tolerations, spread over nodes and zones', () => {
    expect(dep.spec!.replicas).toBeGreaterThanOrEqual(2);
    expect(spec.priorityClassName).toBe('system-cluster-critical');
    expect(spec.tolerations).toEqual(expect.arrayContaining([
      expect.objectContaining({ key: 'CriticalAddonsOnly', operator: 'Exists' }),
      expect.objectContaining({ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }),
    ]));
    const anti = [
      ...(spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((w) => w.podAffinityTerm),
      ...(spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []),
    ];
    expect(anti.some((t) => t.topologyKey === 'kubernetes.io/hostname' && matches(t.labelSelector?.matchLabels, podLabels))).toBe(true);
    const zone = spec.topologySpreadConstraints?.find((t) => t.topologyKey === 'topology.kubernetes.io/zone');
    expect(zone?.maxSkew).toBe(1);
    expect(matches(zone?.labelSelector?.matchLabels, podLabels)).toBe(true);
    // DoNotSchedule would leave pods Pending on clusters whose nodes have no zone label.
    expect(zone?.whenUnsatisfiable).toBe('ScheduleAnyway');
  });

  it('Deployment: selector, labels and service account fit kubeadm and the kube-dns Service', () => {
    expect(matches(dep.spec!.selector.matchLabels, podLabels)).toBe(true);
    expect(matches(svc.spec!.selector, podLabels)).toBe(true);
    // kubeadm finds its DNS addon by listing Deployments labelled k8s-app=kube-dns and errors out on
    // two: the Deployment object must not carry the label its pods carry.
    expect(dep.metadata!.labels?.['k8s-app']).toBeUndefined();
    expect(spec.serviceAccountName).toBe(pick<IServiceAccount>(objs, 'ServiceAccount', 'clusterdns').metadata!.name);
    expect(spec.volumes?.find((v) => v.configMap)?.configMap?.name).toBe(cm.metadata!.name);
  });

  it('Deployment: hardened pod with probes, resources and a grace period that fits the lameduck', () => {
    checkHardenedDnsPod(spec, corefile);
    expect(spec.automountServiceAccountToken ?? true).toBe(true); // the kubernetes plugin needs its token
  });

  it('Deployment: rolling update surges one pod and never drops below the desired count', () => {
    expect(dep.spec!.strategy?.type).toBe('RollingUpdate');
    expect(dep.spec!.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
    expect(dep.spec!.strategy?.rollingUpdate?.maxSurge).toBe(1);
    expect(lameduckMs(corefile)).toBe(5000);
  });

  it('Service kube-dns: dns 53/UDP, dns-tcp 53/TCP, metrics 9153/TCP, k8s-app: kube-dns', () => {
    expect(svc.metadata!.labels?.['k8s-app']).toBe('kube-dns');
    expect(svc.spec!.selector).toEqual({ 'k8s-app': 'kube-dns' });
    expect(svc.spec!.ports!.map((p) => `${p.name}:${p.port}/${p.protocol}->${String(p.targetPort)}`)).toEqual([
      'dns:53/UDP->53', 'dns-tcp:53/TCP->53', 'metrics:9153/TCP->9153']);
    expect(svc.spec!.clusterIP).toMatch(/^\d+\.\d+\.\d+\.10$/);
  });

  it('PodDisruptionBudget: selects the clusterdns pods and lets one go at a time', () => {
    const pdb = pick<IPodDisruptionBudget>(objs, 'PodDisruptionBudget', 'clusterdns');
    expect(matches(pdb.spec!.selector?.matchLabels, podLabels)).toBe(true);
    expect(pdb.spec!.maxUnavailable).toBe(1);
    expect(pdb.spec!.minAvailable).toBeUndefined();
    expect(dep.spec!.replicas! - 1).toBeGreaterThanOrEqual(1);
  });

  it('RBAC grants exactly what the Corefile\'s plugins watch, to the Deployment\'s account', () => {
    const role = pick<IClusterRole>(objs, 'ClusterRole', 'system:clusterdns');
    const binding = pick<IClusterRoleBinding>(objs, 'ClusterRoleBinding', 'system:clusterdns');
    expect([...grantedRules(role)].sort()).toEqual([...requiredRules(corefile)].sort());
    for (const r of role.rules ?? []) expect(r.resourceNames ?? []).toEqual([]);
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata!.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: spec.serviceAccountName, namespace: dep.metadata!.namespace }]);
  });
});

describe('requiredRules: RBAC derived from a Corefile', () => {
  const rules = (text: string) => [...requiredRules(parseCorefile(text, { file: 'Corefile' }))].sort();
  const base = ['|namespaces|list', '|namespaces|watch', '|services|list', '|services|watch',
    'discovery.k8s.io|endpointslices|list', 'discovery.k8s.io|endpointslices|watch'].sort();

  it('no kubernetes plugin: nothing', () => {
    expect(rules('. {\n  forward . 127.0.0.1\n}\n')).toEqual([]);
  });
  it('pods insecure / disabled: no pods', () => {
    expect(rules('. {\n  kubernetes cluster.local {\n    pods insecure\n  }\n}\n')).toEqual(base);
    expect(rules('. {\n  kubernetes cluster.local\n}\n')).toEqual(base);
  });
  it('pods verified: pods too', () => {
    expect(rules('. {\n  kubernetes cluster.local {\n    pods verified\n  }\n}\n')).toEqual([...base, '|pods|list', '|pods|watch'].sort());
  });
  it('autopath @kubernetes: pods too', () => {
    expect(rules('. {\n  autopath @kubernetes\n  kubernetes cluster.local\n}\n')).toEqual([...base, '|pods|list', '|pods|watch'].sort());
  });
});

// ---------------------------------------------------------------------------------------------
// Node-local cache mode

describe('deploy/node-local: node-local cache behind a PreferSameNode Service', () => {
  const objs = loadKustomize(join(deployDir, 'node-local'));
  const ds = pick<IDaemonSet>(objs, 'DaemonSet', 'clusterdns-node-local');
  const spec = ds.spec!.template.spec!;
  const labels = ds.spec!.template.metadata!.labels!;
  const svc = pick<IService>(objs, 'Service', 'clusterdns-node-local');
  const cm = pick<IConfigMap>(objs, 'ConfigMap', 'clusterdns-node-local');
  const env = { KUBE_DNS_SERVICE_HOST: '10.96.0.10' };
  const { text: corefileText, parsed: corefile } = corefileOf(cm, env);
  const kubeDns = pick<IService>(loadKustomize(join(deployDir, 'kubernetes')), 'Service', 'kube-dns');

  it('runs one hardened cache per node, without hostNetwork, NET_ADMIN or host ports', () => {
    checkHardenedDnsPod(spec, corefile);
    expect(spec.priorityClassName).toBe('system-node-critical');
    expect(spec.tolerations).toEqual(expect.arrayContaining([{ operator: 'Exists' }]));
    expect(matches(ds.spec!.selector.matchLabels, labels)).toBe(true);
  });

  it('its pods are not kube-dns endpoints (that would make the caches forward to each other)', () => {
    expect(matches(kubeDns.spec!.selector, labels)).toBe(false);
  });

  it('rolls node by node with a surge pod, so a node keeps a Ready cache', () => {
    expect(ds.spec!.updateStrategy?.type).toBe('RollingUpdate');
    expect(ds.spec!.updateStrategy?.rollingUpdate?.maxUnavailable).toBe(0);
    expect(ds.spec!.updateStrategy?.rollingUpdate?.maxSurge).toBe(1);
  });

  it('Service: PreferSameNode, pinned clusterIP for kubelet clusterDNS, no Local policy', () => {
    expect(svc.spec!.trafficDistribution).toBe('PreferSameNode');
    expect(svc.spec!.internalTrafficPolicy ?? 'Cluster').toBe('Cluster');
    expect(svc.spec!.clusterIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(svc.spec!.clusterIP).not.toBe(kubeDns.spec!.clusterIP);
    expect(matches(svc.spec!.selector, labels)).toBe(true);
    expect(svc.spec!.ports!.map((p) => `${p.name}:${p.port}/${p.protocol}`)).toEqual(['dns:53/UDP', 'dns-tcp:53/TCP']);
  });

  it('Corefile: cluster zones go to the kube-dns Service over TCP, the rest to the node\'s resolvers, all cached', () => {
    expect(corefileText).toContain('{$KUBE_DNS_SERVICE_HOST}');
    const clusterBlock = corefile.blocks.find((b) => b.keys.some((k) => k.zone === 'cluster.local.'))!;
    expect(clusterBlock.keys.map((k) => k.zone).sort()).toEqual(['cluster.local.', 'in-addr.arpa.', 'ip6.arpa.']);
    const fwd = clusterBlock.directives.find((d) => d.name.text === 'forward')!;
    expect(fwd.args.map((a) => a.text)).toEqual(['.', env.KUBE_DNS_SERVICE_HOST]);
    expect(subLines(fwd, 'force_tcp')).toHaveLength(1);
    const rootBlock = corefile.blocks.find((b) => b.keys.some((k) => k.zone === '.'))!;
    expect(rootBlock.directives.find((d) => d.name.text === 'forward')!.args.map((a) => a.text)).toEqual(['.', '/etc/resolv.conf']);
    for (const b of corefile.blocks) expect(b.directives.some((d) => d.name.text === 'cache'), b.keys[0]!.text).toBe(true);
    // KUBE_DNS_SERVICE_HOST comes from the kubelet's Service links, in kube-dns's namespace.
    expect(spec.enableServiceLinks ?? true).toBe(true);
    expect(ds.metadata!.namespace).toBe(kubeDns.metadata!.namespace);
  });

  it('talks to no API: no kubernetes plugin, no RBAC, no token', () => {
    expect(requiredRules(corefile).size).toBe(0);
    expect(objs.filter((o) => /Role/.test(o.obj.kind))).toEqual([]);
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(pick<IServiceAccount>(objs, 'ServiceAccount', spec.serviceAccountName!).automountServiceAccountToken).toBe(false);
  });

  it('the Corefile parses and plans with the server\'s own parser (needs every plugin registered)', () => {
    const plan = buildPlan(parseCorefile(corefileText, { file: 'ConfigMap/clusterdns-node-local', env }), { defaultPort: 53 });
    expect(plan.listeners.map((l) => l.port)).toEqual([53]);
  });
});

// ---------------------------------------------------------------------------------------------
// Autoscaling

describe('deploy/autoscaler: cluster-proportional-autoscaler, and the HPA alternative', () => {
  const objs = loadKustomize(join(deployDir, 'autoscaler'));
  const dns = pick<IDeployment>(loadKustomize(join(deployDir, 'kubernetes')), 'Deployment', 'clusterdns');
  const cpa = pick<IDeployment>(objs, 'Deployment', 'clusterdns-autoscaler');
  const cmd = cpa.spec!.template.spec!.containers[0]!.command ?? [];
  const flag = (name: string) => cmd.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

  it('linear mode: coresPerReplica/nodesPerReplica, min 2, preventSinglePointFailure', () => {
    const cm = pick<IConfigMap>(objs, 'ConfigMap', flag('configmap')!);
    const linear = JSON.parse(cm.data!.linear!) as Record<string, number | boolean>;
    expect(linear.coresPerReplica).toBeGreaterThan(0);
    expect(linear.nodesPerReplica).toBeGreaterThan(0);
    expect(linear.min).toBeGreaterThanOrEqual(2);
    expect(linear.max).toBeGreaterThanOrEqual(linear.min as number);
    expect(linear.preventSinglePointFailure).toBe(true);
  });

  it('targets the clusterdns Deployment in its namespace, with just enough RBAC', () => {
    expect(flag('target')).toBe(`deployment/${dns.metadata!.name}`);
    expect(flag('namespace')).toBe(dns.metadata!.namespace);
    const role = pick<IRole>(objs, 'Role', 'clusterdns-autoscaler');
    expect([...grantedRules(role)].sort()).toEqual(['|configmaps|get', 'apps|deployments/scale|get', 'apps|deployments/scale|update'].sort());
    const cluster = pick<IClusterRole>(objs, 'ClusterRole', 'system:clusterdns-autoscaler');
    expect([...grantedRules(cluster)].sort()).toEqual(['|nodes|list', '|nodes|watch']);
    expect(cpa.spec!.template.spec!.serviceAccountName).toBe('clusterdns-autoscaler');
  });

  it('the HPA example scales the same Deployment on CPU and keeps 2 replicas', () => {
    const hpa = pick<IHorizontalPodAutoscaler>(loadDir('autoscaler'), 'HorizontalPodAutoscaler', 'clusterdns');
    expect(hpa.spec!.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: dns.metadata!.name });
    expect(hpa.spec!.minReplicas).toBeGreaterThanOrEqual(2);
    expect(objs.some((o) => o.obj.kind === 'HorizontalPodAutoscaler')).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Container build

describe('deploy/Containerfile', () => {
  const text = readFileSync(join(deployDir, 'Containerfile'), 'utf8');
  const lines = text.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  const stages = lines.filter((l) => /^FROM\s/i.test(l));
  const lastStage = text.slice(text.lastIndexOf('\nFROM '));
  const dep = pick<IDeployment>(loadKustomize(join(deployDir, 'kubernetes')), 'Deployment', 'clusterdns');

  it('is multi-stage on an official Node 24 image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^ARG NODE_IMAGE=docker\.io\/library\/node:24[-\w.]*$/m);
    for (const s of stages) expect(s).toMatch(/^FROM \$\{NODE_IMAGE\}/);
  });

  it('builds with dev dependencies, ships production dependencies only, without running scripts', () => {
    expect(text).toMatch(/tsc -p tsconfig\.build\.json/);
    expect(text).toMatch(/npm ci --omit=dev --ignore-scripts/);
    expect(lastStage).not.toMatch(/npm (ci|install)/);
    expect(lastStage).toMatch(/COPY --from=deps \/app\/node_modules/);
  });

  it('runs node dist/src/cli.js as a numeric non-root user, the uid the manifests use', () => {
    const user = /^USER (\d+)(?::(\d+))?$/m.exec(lastStage);
    expect(user).toBeTruthy();
    expect(Number(user![1])).toBeGreaterThan(0);
    expect(Number(user![1])).toBe(dep.spec!.template.spec!.securityContext!.runAsUser);
    expect(lastStage).toMatch(/^ENTRYPOINT \["node", "dist\/src\/cli\.js"\]$/m);
    expect(lastStage).toMatch(/^CMD \["-conf", "\/etc\/coredns\/Corefile"\]$/m);
  });

  it('its .dockerignore lets in exactly what the stages COPY from the build context', () => {
    const ignore = readFileSync(join(deployDir, 'Containerfile.dockerignore'), 'utf8').split('\n')
      .map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(ignore[0]).toBe('*');
    const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/\*\*$/, ''));
    const copied = lines.filter((l) => /^COPY /.test(l) && !/--from=/.test(l))
      .flatMap((l) => l.replace(/^COPY\s+/, '').split(/\s+/).slice(0, -1));
    expect(copied.length).toBeGreaterThan(0);
    for (const src of copied) {
      expect(allowed, `${src} is COPYed but excluded from the context`).toContain(src);
      expect(existsSync(join(root, src)), `${src} exists`).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Docs

describe('deploy/README.md', () => {
  const readme = readFileSync(join(deployDir, 'README.md'), 'utf8');

  it('every yaml example parses, and every Kubernetes object in it validates', async () => {
    const blocks = [...readme.matchAll(/^```ya?ml\s*\n([\s\S]*?)^```\s*$/gm)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThan(0);
    for (const b of blocks) {
      const docs = loadAll(b) as Array<Manifest | null>;
      for (const d of docs) {
        if (!d || typeof d !== 'object' || !d.apiVersion) continue;
        if (!existsSync(join(root, 'node_modules', modelPath(d.apiVersion, d.kind) + '.js'))) continue; // CRDs (PrometheusRule)
        expect(await schemaErrors(d), `${d.kind}/${d.metadata?.name}`).toBeUndefined();
      }
    }
  });

  it('every Corefile example parses, and the node-local one is the ConfigMap\'s', () => {
    const blocks = [...readme.matchAll(/^```corefile\s*\n([\s\S]*?)^```\s*$/gm)].map((m) => m[1]!);
    for (const b of blocks) expect(() => parseCorefile(b, { file: 'deploy/README.md', env: { KUBE_DNS_SERVICE_HOST: '10.96.0.10' } })).not.toThrow();
    const nodeLocal = pick<IConfigMap>(loadDir('node-local'), 'ConfigMap', 'clusterdns-node-local').data!.Corefile;
    expect(blocks.filter((b) => b.includes('{$KUBE_DNS_SERVICE_HOST}'))).toEqual([nodeLocal]);
  });

  it('sizes memory from the benchmarks\' measured figures and says which ones are still estimates', () => {
    expect(readme).toContain('measured by `npm run bench`');
    expect(readme).toMatch(/m_ep \| [^|]+\| [\d.]+ KiB \(measured/);
    expect(readme).toMatch(/m_cache \| [^|]+\| [\d.]+ KiB \(estimate\)/);
  });

  it('links only to files that exist', () => {
    for (const m of readme.matchAll(/\]\((?!https?:|#)([^)#\s]+)/g)) {
      expect(existsSync(resolve(dirname(join(deployDir, 'README.md')), m[1]!)), m[1]).toBe(true);
    }
  });
});
