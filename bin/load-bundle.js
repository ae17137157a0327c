// Loads dist/bundle/main.cjs (one CommonJS file, built by `make build`) with the V8 code cache that
// scripts/code-cache.mjs wrote next to it: reading cached bytecode instead of compiling ~350 KB of JavaScript
// saves about 5 ms of every start (Node 20 has no module compile cache of its own). The cache file starts
// with the SHA-1 of the bundle it was made from: a cache of another build is never used, and one V8 rejects
// (another Node version or V8 flags) only costs the compilation it was meant to save.
// CommonJS, like the rest of bin/ (bin/package.json): Node starts a CommonJS entry point several
// milliseconds sooner than an ES module, whose loader it must set up first.
'use strict';
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

const HASH_BYTES = 20;

/** The bundle's exports, its vm.Script and the bundle's SHA-1 (scripts/code-cache.mjs makes the cache from them). */
function loadBundle(file, { useCache = true } = {}) {
  const source = fs.readFileSync(file);
  const hash = createHash('sha1').update(source).digest();
  let cachedData;
  if (useCache) {
    try {
      const c = fs.readFileSync(`${file}.cache`);
      if (c.length > HASH_BYTES && hash.equals(c.subarray(0, HASH_BYTES))) cachedData = c.subarray(HASH_BYTES);
    } catch {
      // no cache: compile as usual
    }
  }
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${source.toString('utf8')}\n})`;
  const script = new vm.Script(wrapped, { filename: file, ...(cachedData ? { cachedData } : {}) });
  const mod = { exports: {} };
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(file), mod, file, path.dirname(file));
  return { exports: mod.exports, script, hash };
}

module.exports = { loadBundle };
