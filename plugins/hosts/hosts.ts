// The hosts handler and its data source: the file (re-read when it changes) plus the inline lines.
import { readFile, stat } from 'node:fs/promises';
import { isSubdomain, matchZone } from '../../src/dns/name.ts';
import { type Msg, type RR, Rcode, Type } from '../../src/dns/types.ts';
import type { Logger } from '../../src/log.ts';
import type { Handler, Next, Reply } from '../../src/plugin.ts';
import type { Request } from '../../src/request.ts';
import { HostsTable, emptyEntries, parseHosts, type HostsEntries } from './hostsfile.ts';

export interface HostsConfig {
  /** The hosts file (default /etc/hosts). */
  path: string;
  /** Was the path written in the Corefile? (only then a missing file is worth a warning) */
  pathGiven: boolean;
  /** Canonical zones the plugin answers for (default: the server block's zones). */
  zones: string[];
  /** Hosts lines written inside the block. */
  inline: string[];
  /** TTL of the records, seconds (default 3600). */
  ttl: number;
  /** Generate PTR records from the entries (default true; `no_reverse` turns it off). */
  reverse: boolean;
  /** How often to check the file for changes, ms (default 5000; 0 disables). */
  reloadMs: number;
  /** Zones whose NXDOMAIN goes to the next plugin instead; null without `fallthrough`. */
  fallthrough: string[] | null;
}

/** Where the file data came from, so an unchanged file is not read and parsed again. */
interface FileState { mtimeMs: number; size: number; ino: number; text: string }

export interface HostsMetrics {
  entries(n: number): void;
  reloaded(mtimeSeconds: number): void;
}

/**
 * The plugin's data: inline entries (parsed once) and file entries (re-parsed when the file's
 * content changes), merged into one HostsTable that queries read without locking or copying.
 */
export class HostsData {
  readonly cfg: HostsConfig;
  table: HostsTable;
  private readonly inline: HostsEntries;
  private file: HostsEntries = emptyEntries();
  private state: FileState | null = null;
  private readonly log: Logger;
  private readonly metrics: HostsMetrics | undefined;

  constructor(cfg: HostsConfig, log: Logger, metrics?: HostsMetrics) {
    this.cfg = cfg;
    this.log = log;
    this.metrics = metrics;
    this.inline = parseHosts(cfg.inline.join('\n'), cfg.zones, cfg.reverse);
    this.table = new HostsTable([this.file, this.inline], cfg.ttl, cfg.zones);
  }

  /**
   * Check the file and reload it if its content changed. A missing or unreadable file keeps the last
   * good data (as CoreDNS does); the inline entries are always served. Returns true if data changed.
   */
  async refresh(): Promise<boolean> {
    let st;
    try {
      st = await stat(this.cfg.path);
    } catch {
      return false;
    }
    const prev = this.state;
    if (prev && prev.mtimeMs === st.mtimeMs && prev.size === st.size && prev.ino === st.ino) return false;
    let text: string;
    try {
      text = await readFile(this.cfg.path, 'utf8');
    } catch (e) {
      this.log.warn(`Failed to read hosts file ${this.cfg.path}: ${(e as Error).message}`);
      return false;
    }
    this.state = { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino, text };
    // A touch, or a ConfigMap symlink swap with the same content: nothing to parse.
    if (prev && prev.text === text) return false;
    this.file = parseHosts(text, this.cfg.zones, this.cfg.reverse);
    const old = this.table;
    this.table = new HostsTable([this.file, this.inline], this.cfg.ttl, this.cfg.zones);
    old.retired = true;
    this.log.debug(`Parsed hosts file into ${this.table.entries} entries`);
    this.metrics?.entries(this.table.entries);
    this.metrics?.reloaded(st.mtimeMs / 1000);
    return true;
  }
}

/** The hosts handler: A, AAAA and PTR from the data, NODATA/NXDOMAIN for names it owns, next otherwise. */
export class HostsHandler implements Handler {
  readonly name = 'hosts';
  readonly memo = true;
  readonly data: HostsData;
  private readonly zones: string[];
  private readonly fall: string[] | null;

  constructor(data: HostsData) {
    this.data = data;
    this.zones = data.cfg.zones;
    this.fall = data.cfg.fallthrough;
  }

  serveDNS(req: Request, next: Next): Reply {
    const name = req.name;
    const qtype = req.qtype;
    const table = this.data.table;
    if (qtype === Type.PTR) {
      // Whatever happens next was decided by the table: the reply is current while the table is.
      req.memoDependsOn(table);
      // As CoreDNS: reverse names need not be in the zones, and a miss always goes on (the reverse
      // zones usually belong to another plugin too).
      const ptr = table.ptr.get(name);
      return ptr ? this.answer(req, ptr) : next(req);
    }
    if (matchZone(name, this.zones) === undefined) return next(req);
    req.memoDependsOn(table);
    let rrs: RR[] | undefined;
    if (qtype === Type.A) rrs = table.a.get(name);
    else if (qtype === Type.AAAA) rrs = table.aaaa.get(name);
    if (rrs) return this.answer(req, rrs);
    if (table.has(name)) return this.answer(req, []); // the name exists, with other types: NODATA
    if (this.fall && this.fall.some((z) => isSubdomain(name, z))) return next(req);
    // Names above entries exist (empty non-terminals): NODATA, not NXDOMAIN. Without a SOA we have
    // nothing to put in the authority section; the answer is still authoritative.
    if (table.empty.has(name)) return this.answer(req, []);
    return this.answer(req, [], Rcode.NXDOMAIN);
  }

  private answer(req: Request, rrs: RR[], rcode: number = Rcode.NOERROR): Msg {
    const m = req.reply(rcode);
    m.flags.aa = true;
    m.answer = rrs.slice();
    return m;
  }
}
