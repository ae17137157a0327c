// Writes dist/bundle/main.cjs.cache, the V8 code cache bin/load-bundle.js starts the launcher with. The cache is
// taken after one small real run (-n 1 true), so it holds the bytecode of everything a run compiles, not only of
// the top level. Never fails the build: without a cache the launcher compiles its code as usual.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheFile, loadBundle } from '../bin/load-bundle.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bundle = path.join(root, 'dist', 'bundle', 'main.cjs');
const out = `${bundle}.cache`;
fs.rmSync(out, { force: true });
let note = '';
try {
  const { exports, script, source } = loadBundle(bundle, { useCache: false });
  exports.setExternalImporter((specifier) => import(specifier));
  // The warm-up run's own output (none, or an isolation notice) goes to the build log.
  const code = await exports.main(['-n', '1', 'true']);
  if (code !== 0) note = ` (the warm-up run exited ${code}: the cache covers less)`;
  const data = script.createCachedData();
  fs.writeFileSync(out, cacheFile(source, data));
  process.stderr.write(`code-cache: wrote ${path.relative(root, out)} (${Math.round(data.length / 1024)} KiB)${note}\n`);
} catch (e) {
  fs.rmSync(out, { force: true });
  process.stderr.write(`code-cache: no cache written (${e instanceof Error ? e.message : String(e)}); the launcher compiles as usual\n`);
}
process.exit(0);
