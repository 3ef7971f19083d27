// What test/e2e/netns/searchpath.ts reports (one `RESULT {json}` line), shared with the vitest side.

/** The names resolved with `getent hosts`, in this order, in each run. */
export const lookupNames = ['my-svc', 'my-svc.other-ns', 'my-svc.default.svc.cluster.local.', 'api.example.com'] as const;

export interface Lookup {
  /** As given to `getent hosts`. */
  name: string;
  exit: number | null;
  /** Addresses getent printed (first column of each line). */
  addresses: string[];
  output: string;
  /** Queries clusterdns received for this lookup (coredns_dns_requests_total deltas), by type. */
  queries: Record<string, number>;
  total: number;
  /** Queries the upstream received for this lookup: "TYPE name". */
  upstream: string[];
  /** The query log lines of this lookup: "TYPE name RCODE". */
  log: string[];
}

export interface Run {
  mode: 'plain' | 'autopath';
  lookups: Lookup[];
  /** coredns_autopath_success_total at the end (0 without autopath). */
  autopathSuccess: number;
}

export type Result = { ok: true; runs: Run[] } | { ok: false; error: string };
