import { readFileSync } from 'node:fs';

// package.json sits two levels up from both src/version.ts and dist/src/version.js.
const pkgUrl = new URL(import.meta.url.includes('/dist/') ? '../../package.json' : '../package.json', import.meta.url);
export const version: string = (JSON.parse(readFileSync(pkgUrl, 'utf8')) as { version: string }).version;
export const banner = `clusterdns-${version}`;
export const platform = `${process.platform}/${process.arch}, node ${process.version}`;
