// Slim copies of the API objects: only what DNS answers need. Memory is what kills cluster DNS in big
// clusters, so full objects (managedFields, annotations, status) are never kept.

export interface SlimPort {
  /** Port name ("" when unnamed: such ports get no SRV record). */
  name: string;
  port: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
}

export interface SlimService {
  namespace: string;
  name: string;
  type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  /** spec.clusterIPs (or [spec.clusterIP]); empty or ["None"] means headless. */
  clusterIPs: string[];
  /** spec.externalName for ExternalName services. */
  externalName: string;
  ports: SlimPort[];
  publishNotReadyAddresses: boolean;
  /** When the change that produced this version happened (ms since epoch), for the programming-duration metric. */
  changedAt?: number;
}

export interface SlimEndpoint {
  addresses: string[];
  /** endpoints[].hostname (StatefulSet pods with a subdomain set it). */
  hostname?: string;
  /** conditions.ready; an absent condition counts as ready (API semantics). */
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  /** targetRef.name when targetRef.kind is Pod (for endpoint_pod_names). */
  podName?: string;
  nodeName?: string;
}

export interface SlimEndpointSlice {
  namespace: string;
  name: string;
  /** The owning Service, from label kubernetes.io/service-name. */
  service: string;
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  ports: SlimPort[];
  endpoints: SlimEndpoint[];
  /** annotation endpoints.kubernetes.io/last-change-trigger-time (ms since epoch). */
  changedAt?: number;
}

export interface SlimNamespace {
  name: string;
  labels: Record<string, string>;
}

export interface SlimPod {
  namespace: string;
  name: string;
  /** status.podIPs. Only running, non-terminating pods are kept at all. */
  ips: string[];
  /** spec.hostNetwork: the pod shares its node's IP with other pods, so the IP names no namespace. */
  hostNetwork?: boolean;
}

export type Kind = 'Service' | 'EndpointSlice' | 'Namespace' | 'Pod';

/** The slim record of each kind. */
export interface SlimOf {
  Service: SlimService;
  EndpointSlice: SlimEndpointSlice;
  Namespace: SlimNamespace;
  Pod: SlimPod;
}

/**
 * A replacement of every object of one kind by a list that arrives in pages: add() each page as it
 * comes (the objects in it are upserted at once), then end() deletes whatever no page held. Until
 * end(), objects missing from the new list still answer. Abandoning one (a list that failed halfway)
 * leaves the zone with the pages already added and nothing deleted; the next list finishes the job.
 */
export interface Replacement<T> {
  add(items: readonly T[]): void;
  end(): void;
}

/**
 * What a source (API watch or manifest files) feeds. Upserts replace by namespace/name; replaceAll sets
 * the full set of one kind (initial list, relist after 410, manifest reload) and deletes what is gone;
 * beginReplace does the same page by page, so a paged list is never held whole.
 */
export interface ZoneSink {
  upsertService(s: SlimService): void;
  deleteService(namespace: string, name: string): void;
  upsertEndpointSlice(e: SlimEndpointSlice): void;
  deleteEndpointSlice(namespace: string, name: string): void;
  upsertNamespace(n: SlimNamespace): void;
  deleteNamespace(name: string): void;
  upsertPod(p: SlimPod): void;
  deletePod(namespace: string, name: string): void;
  replaceAll(kind: 'Service', items: SlimService[]): void;
  replaceAll(kind: 'EndpointSlice', items: SlimEndpointSlice[]): void;
  replaceAll(kind: 'Namespace', items: SlimNamespace[]): void;
  replaceAll(kind: 'Pod', items: SlimPod[]): void;
  beginReplace<K extends Kind>(kind: K): Replacement<SlimOf[K]>;
}

/** A running source of objects (API watches or manifest files) feeding a ZoneSink. */
export interface SourceHandle {
  /** Resolves when every watched kind has completed its first list (or the manifests were loaded). */
  readonly synced: Promise<void>;
  isSynced(): boolean;
  /** ms since epoch of the last successful contact with the source (list, watch event or bookmark). */
  lastContact(): number;
  stop(): Promise<void>;
}
