// HTTP listen addresses for health, ready and prometheus: "[HOST]:PORT" as Go's net.SplitHostPort takes it.
import type { Controller } from '../../src/corefile/controller.ts';
import type { Token } from '../../src/corefile/types.ts';
import { splitHostPort } from '../../src/server/http.ts';

/** Validate an address argument (":8080", "localhost:8091", "[::1]:8181"). */
export function parseHttpAddress(c: Controller, tok: Token): string {
  let port: number;
  try {
    port = splitHostPort(tok.text).port;
  } catch {
    throw c.err(`invalid address '${tok.text}': want [HOST]:PORT`, tok);
  }
  if (port > 65535) throw c.err(`invalid port in address '${tok.text}'`, tok);
  return tok.text;
}

/** A URL base for reaching our own listener: wildcard hosts become loopback. */
export function loopbackBase(addr: string, boundPort: number): string {
  const { host, port } = splitHostPort(addr);
  const p = boundPort || port;
  if (host === '' || host === '0.0.0.0') return `http://127.0.0.1:${p}`;
  if (host === '::') return `http://[::1]:${p}`;
  return host.includes(':') ? `http://[${host}]:${p}` : `http://${host}:${p}`;
}

/** The directive's one optional argument as an HTTP listen address, or `fallback` when there is none. */
export function optionalHttpAddress(c: Controller, fallback: string): string {
  c.expectArgs(0, 1);
  const tok = c.argTokens[0];
  return tok ? parseHttpAddress(c, tok) : fallback;
}
