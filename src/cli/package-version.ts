// The version in package.json, for the generators and tests (main has its own way to print --version).
import { readFileSync } from 'node:fs';

/** Reads package.json two levels up from this file (src/cli or dist/cli → the package root). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error('package.json has no version');
  return pkg.version;
}
