// Go's time.Duration.String(), so messages read exactly like CoreDNS's ("30s", "5m0s", "1.5ms").

const NS_PER_US = 1e3;
const NS_PER_MS = 1e6;
const NS_PER_S = 1e9;
const NS_PER_M = 60 * NS_PER_S;
const NS_PER_H = 60 * NS_PER_M;

/** `whole` units plus a fraction with trailing zeros dropped: (1_500_000, 1e6) → "1.5". */
function fixed(ns: number, unit: number): string {
  const whole = Math.floor(ns / unit);
  const rest = ns - whole * unit;
  if (rest === 0) return String(whole);
  const digits = String(unit).length - 1;
  return `${whole}.${String(rest).padStart(digits, '0').replace(/0+$/, '')}`;
}

/** Format milliseconds the way Go prints a time.Duration. Precision is one nanosecond. */
export function formatDuration(ms: number): string {
  let ns = Math.round(ms * NS_PER_MS);
  if (ns === 0) return '0s';
  const sign = ns < 0 ? '-' : '';
  ns = Math.abs(ns);
  if (ns < NS_PER_US) return `${sign}${ns}ns`;
  if (ns < NS_PER_MS) return `${sign}${fixed(ns, NS_PER_US)}µs`;
  if (ns < NS_PER_S) return `${sign}${fixed(ns, NS_PER_MS)}ms`;
  const h = Math.floor(ns / NS_PER_H);
  ns -= h * NS_PER_H;
  const m = Math.floor(ns / NS_PER_M);
  ns -= m * NS_PER_M;
  let out = sign;
  if (h > 0) out += `${h}h`;
  if (h > 0 || m > 0) out += `${m}m`;
  return `${out}${fixed(ns, NS_PER_S)}s`;
}
