// Where tsmpiexec is installed: the nearest directory above this module holding tsmpiexec's package.json.
// Works the same from src/ (tests), dist/ (tsc output) and dist/bundle/ (the esbuild bundle bin/ loads).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function packageRoot(): string {
  if (cached) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'tsmpiexec') return (cached = dir);
    } catch {
      /* not here */
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the tsmpiexec package root');
    dir = up;
  }
}

/** The launcher script, by absolute path (remote proxies start it again, over a shared file system). */
export function binPath(): string {
  return path.join(packageRoot(), 'bin', 'tsmpiexec.js');
}

export function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}
