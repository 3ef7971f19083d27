// Domain name helpers. Names are FQDNs with a trailing dot; comparisons are ASCII case-insensitive.

/** Lowercase, with a trailing dot. "Example.COM" → "example.com."; "" → ".". */
export function canonical(name: string): string {
  let n = name.toLowerCase();
  if (!n.endsWith('.')) n += '.';
  return n;
}

export function fqdn(name: string): string {
  return name.endsWith('.') ? name : name + '.';
}

/** True if `name` equals `zone` or lies below it. Both must be canonical. */
export function isSubdomain(name: string, zone: string): boolean {
  if (zone === '.') return true;
  if (name.length === zone.length) return name === zone;
  return name.length > zone.length && name.endsWith(zone) && name.charCodeAt(name.length - zone.length - 1) === 46;
}

/** The longest zone in `zones` (canonical) that `name` (canonical) is in, or undefined. */
export function matchZone(name: string, zones: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const z of zones) if (isSubdomain(name, z) && (best === undefined || z.length > best.length)) best = z;
  return best;
}

/** Split a canonical name into labels: "a.b." → ["a", "b"]; "." → []. Escapes are not interpreted. */
export function labels(name: string): string[] {
  if (name === '.') return [];
  return name.slice(0, -1).split('.');
}

/** Reverse-zone name for an IPv4 or IPv6 address ("10.0.0.1" → "1.0.0.10.in-addr.arpa."). */
export function reverseName(ip: string): string | undefined {
  if (ip.includes(':')) {
    const words = expandIPv6(ip);
    if (!words) return undefined;
    const nibbles: string[] = [];
    for (let i = 7; i >= 0; i--) {
      const w = words[i]!;
      for (let s = 0; s < 16; s += 4) nibbles.push(((w >> s) & 0xf).toString(16));
    }
    return nibbles.join('.') + '.ip6.arpa.';
  }
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
  return parts.reverse().join('.') + '.in-addr.arpa.';
}

/** The address a reverse name stands for, or undefined if the name is not a complete reverse name. */
export function addressFromReverse(name: string): string | undefined {
  const n = canonical(name);
  if (n.endsWith('.in-addr.arpa.')) {
    const parts = n.slice(0, -'.in-addr.arpa.'.length).split('.');
    if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255)) return undefined;
    return parts.reverse().join('.');
  }
  if (n.endsWith('.ip6.arpa.')) {
    const nib = n.slice(0, -'.ip6.arpa.'.length).split('.');
    if (nib.length !== 32 || nib.some((x) => !/^[0-9a-f]$/.test(x))) return undefined;
    nib.reverse();
    const words: number[] = [];
    for (let i = 0; i < 8; i++) words.push(parseInt(nib.slice(i * 4, i * 4 + 4).join(''), 16));
    return compressIPv6(words);
  }
  return undefined;
}

/** Parse IPv6 text into 8 16-bit words (accepts "::", embedded IPv4). */
export function expandIPv6(ip: string): number[] | undefined {
  let s = ip;
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    const v4 = s.slice(lastColon + 1).split('.').map(Number);
    if (v4.length !== 4 || v4.some((x) => !(x >= 0 && x <= 255))) return undefined;
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    s = s.slice(0, lastColon + 1) + '0';
    s = s.slice(0, -1);
    if (s.endsWith('::')) { /* keep */ } else if (s.endsWith(':')) s = s.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parse = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    for (const w of h.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(w)) return undefined;
      out.push(parseInt(w, 16));
    }
    return out;
  };
  const head = parse(halves[0]!);
  if (!head) return undefined;
  if (halves.length === 1) {
    const all = [...head, ...tail];
    return all.length === 8 ? all : undefined;
  }
  const rest = parse(halves[1]!);
  if (!rest) return undefined;
  const fill = 8 - head.length - rest.length - tail.length;
  if (fill < 1) return undefined;
  return [...head, ...new Array<number>(fill).fill(0), ...rest, ...tail];
}

/** RFC 5952 text for 8 words. */
export function compressIPv6(words: number[]): string {
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  return hex.slice(0, bestStart).join(':') + '::' + hex.slice(bestStart + bestLen).join(':');
}

/** Canonical text form of an IP address (IPv6 compressed per RFC 5952), or undefined if invalid. */
export function normalizeIP(ip: string): string | undefined {
  if (ip.includes(':')) {
    const w = expandIPv6(ip);
    return w ? compressIPv6(w) : undefined;
  }
  return reverseName(ip) ? ip.split('.').map(Number).join('.') : undefined;
}

/** miekg/dns IsDomainName without escapes: labels of 1-63 octets, at most 255 octets in all. */
export function isDomainName(s: string): boolean {
  if (s === '.') return true;
  const body = s.endsWith('.') ? s.slice(0, -1) : s;
  if (body === '' || /\s/.test(body)) return false;
  let wire = 1;
  for (const label of body.split('.')) {
    const n = Buffer.byteLength(label);
    if (n === 0 || n > 63) return false;
    wire += n + 1;
  }
  return wire <= 255;
}
