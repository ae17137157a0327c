// bin/load-bundle.js: the V8 code cache is used only for the very bundle it was made from. V8 itself checks no more
// than the source's length, so a same-length edit of the bundle must still be caught, here by the cache file's
// own copy of the bundle.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { Script } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

interface Loaded {
  exports: { v?: number };
  script: Script;
  source: Buffer;
  cacheUsed: boolean;
}
interface LoadBundleModule {
  loadBundle(file: string, o?: { useCache?: boolean }): Loaded;
  cacheFile(source: Buffer, data: Buffer): Buffer;
  cachedDataFor(source: Buffer, cache: Buffer): Buffer | undefined;
}
const { loadBundle, cacheFile, cachedDataFor } = createRequire(import.meta.url)('../../bin/load-bundle.js') as LoadBundleModule;

let dir: string;
let bundle: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsmpi-bundle-'));
  bundle = path.join(dir, 'main.cjs');
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Writes the bundle and a cache made from it, as scripts/code-cache.mjs does. */
function build(source: string): void {
  fs.writeFileSync(bundle, source);
  const { script, source: src } = loadBundle(bundle, { useCache: false });
  fs.writeFileSync(`${bundle}.cache`, cacheFile(src, script.createCachedData()));
}

describe('the bundle loader and its code cache', () => {
  it('uses the cache made from this very bundle', () => {
    build('function f() { return 1; } module.exports.v = f();');
    const r = loadBundle(bundle);
    expect(r.cacheUsed).toBe(true);
    expect(r.exports.v).toBe(1);
  });

  it('ignores it after a same-length edit of the bundle, and runs the edited code', () => {
    build('function f() { return 1; } module.exports.v = f();');
    fs.writeFileSync(bundle, 'function f() { return 2; } module.exports.v = f();');
    const r = loadBundle(bundle);
    expect(r.cacheUsed).toBe(false);
    expect(r.exports.v).toBe(2);
  });

  it('runs without a cache file, or with a damaged one', () => {
    fs.writeFileSync(bundle, 'module.exports.v = 3;');
    expect(loadBundle(bundle)).toMatchObject({ cacheUsed: false, exports: { v: 3 } });
    fs.writeFileSync(`${bundle}.cache`, 'not a cache');
    expect(loadBundle(bundle)).toMatchObject({ cacheUsed: false, exports: { v: 3 } });
  });

  it('finds the data only behind an identical copy of the source', () => {
    const src = Buffer.from('abc');
    const data = Buffer.from([1, 2, 3]);
    expect(cachedDataFor(src, cacheFile(src, data))).toEqual(data);
    expect(cachedDataFor(Buffer.from('abd'), cacheFile(src, data))).toBeUndefined();
    expect(cachedDataFor(Buffer.from('abcd'), cacheFile(src, data))).toBeUndefined();
    expect(cachedDataFor(src, cacheFile(src, data).subarray(0, 20))).toBeUndefined();
    expect(cachedDataFor(src, cacheFile(src, Buffer.alloc(0)))).toBeUndefined();
  });
});
