// Loads dist/bundle/main.cjs (one CommonJS file, built by `make build`) with the V8 code cache that
// scripts/code-cache.mjs wrote next to it: reading cached bytecode instead of compiling ~350 KB of JavaScript
// saves about 5 ms of every start (Node 20 has no module compile cache of its own).
// V8 checks a cache only against the length of the source, so the cache file carries a copy of the very bundle it
// was made from, and is used only when that copy equals the bundle byte for byte. That comparison is a memcmp;
// a hash would need node:crypto, whose loading alone costs about 3 ms. A cache of another build is never used,
// and one V8 rejects (another Node version or V8 flags) only costs the compilation it was meant to save.
// CommonJS, like the rest of bin/ (bin/package.json): Node starts a CommonJS entry point several
// milliseconds sooner than an ES module, whose loader it must set up first.
'use strict';
const fs = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

// Cache file layout: MAGIC, the bundle's length (uint32 LE), the bundle, V8's cached data.
const MAGIC = Buffer.from('tsmpiexec-code-cache-2\n');
const HEAD = MAGIC.length + 4;

/** The cache file's contents for this bundle and V8's cached data. */
function cacheFile(source, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(source.length, 0);
  return Buffer.concat([MAGIC, len, source, data]);
}

/** V8's cached data in a cache file, if the file was made from exactly this source; else undefined. */
function cachedDataFor(source, c) {
  if (c.length <= HEAD || !c.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const len = c.readUInt32LE(MAGIC.length);
  if (len !== source.length || c.length <= HEAD + len || !c.subarray(HEAD, HEAD + len).equals(source)) return undefined;
  return c.subarray(HEAD + len);
}

/** The bundle's exports, its vm.Script and its source (scripts/code-cache.mjs makes the cache from them). */
function loadBundle(file, { useCache = true } = {}) {
  const source = fs.readFileSync(file);
  let cachedData;
  if (useCache) {
    try {
      cachedData = cachedDataFor(source, fs.readFileSync(`${file}.cache`));
    } catch {
      // no cache: compile as usual
    }
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source.toString('utf8')}\n})`;
  const script = new vm.Script(wrapped, { filename: file, ...(cachedData ? { cachedData } : {}) });
  const mod = { exports: {} };
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(file), mod, file, path.dirname(file));
  return { exports: mod.exports, script, source, cacheUsed: cachedData !== undefined && !script.cachedDataRejected };
}

module.exports = { loadBundle, cacheFile, cachedDataFor };
