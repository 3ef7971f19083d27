import { dirname, isAbsolute, resolve } from 'node:path';
import { CorefileError, type Directive, type ServerBlock, type Token } from './types.ts';
import { parseDuration } from './duration.ts';

/**
 * A plugin's view of one directive (or one line inside a directive's block): its arguments and block
 * lines, with helpers that turn mistakes into CorefileErrors naming file, line and directive.
 */
export class Controller {
  readonly directive: Directive;
  /** The plugin name used in error messages (the top-level directive, also for nested lines). */
  readonly plugin: string;
  /** The server block this directive belongs to (its keys give the default zones). */
  readonly serverBlock: ServerBlock;

  constructor(directive: Directive, serverBlock: ServerBlock, plugin?: string) {
    this.directive = directive;
    this.serverBlock = serverBlock;
    this.plugin = plugin ?? directive.name.text;
  }

  /** The line's first word: the directive name, or the property name inside a block. */
  get name(): string { return this.directive.name.text; }
  get file(): string { return this.directive.name.file; }
  get line(): number { return this.directive.name.line; }
  get args(): string[] { return this.directive.args.map((t) => t.text); }
  get argTokens(): Token[] { return this.directive.args; }
  get hasBlock(): boolean { return this.directive.block !== null; }

  /** Controllers for each line of the nested block ([] when there is none). */
  lines(): Controller[] {
    return (this.directive.block ?? []).map((d) => new Controller(d, this.serverBlock, this.plugin));
  }

  /** Canonical zones of the server block's keys ("." etc.), used when a plugin names no zones. */
  get serverZones(): string[] { return this.serverBlock.keys.map((k) => k.zone); }

  /** An error at `tok` (default: this line) naming this plugin. */
  err(message: string, tok?: Token): CorefileError {
    const t = tok ?? this.directive.name;
    return new CorefileError(t.file, t.line, this.plugin, message);
  }

  /** CoreDNS's wording for a wrong number of arguments. */
  argErr(tok?: Token): CorefileError {
    const t = tok ?? this.directive.args.at(-1) ?? this.directive.name;
    return this.err(`Wrong argument count or unexpected line ending after '${t.text}'`, t);
  }

  /** Require between min and max arguments (max defaults to min; Infinity allowed). */
  expectArgs(min: number, max: number = min): string[] {
    const n = this.directive.args.length;
    if (n < min || n > max) throw this.argErr();
    return this.args;
  }

  noBlock(): void {
    if (this.directive.block !== null && this.directive.block.length > 0) {
      throw this.err(`unexpected block after '${this.name}'`, this.directive.block[0]!.name);
    }
  }

  unknownProperty(): CorefileError {
    return this.err(`unknown property '${this.name}'`);
  }

  /** A Go-style duration ("5s", "1m30s", "250ms") as milliseconds. */
  duration(tok: Token): number {
    const ms = parseDuration(tok.text);
    if (ms === undefined) throw this.err(`invalid duration '${tok.text}'`, tok);
    return ms;
  }

  /** A file path relative to the Corefile (or imported file) that the token was written in. */
  pathRelativeToFile(tok: Token): string {
    if (isAbsolute(tok.text) || tok.file.startsWith('<')) return tok.text;
    return resolve(dirname(tok.file), tok.text);
  }

  /** An integer in [min, max]. */
  int(tok: Token, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    if (!/^-?\d+$/.test(tok.text)) throw this.err(`invalid number '${tok.text}'`, tok);
    const v = Number(tok.text);
    if (v < min || v > max) throw this.err(`'${tok.text}' out of range [${min}, ${max}]`, tok);
    return v;
  }
}
