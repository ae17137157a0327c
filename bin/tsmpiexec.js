#!/usr/bin/env node
// Thin shim: everything lives in dist/bundle/main.cjs (built by `make build`), loaded by load-bundle.js.
'use strict';
const path = require('node:path');
const { loadBundle } = require('./load-bundle.js');
const { startCgroupHeadStart } = require('./cgroup-head-start.js');

const fail = (e) => {
  process.stderr.write(`tsmpiexec: internal error: ${e && e.stack ? e.stack : e}\n`);
  process.exit(70);
};

// First, so that the kernel's wait for the first cgroup move runs while the bundle loads (see the module).
const headStart = startCgroupHeadStart(process.argv.slice(2), process.env);

const root = path.join(__dirname, '..');
const bundleFile = path.join(root, 'dist', 'bundle', 'main.cjs');
let bundle;
try {
  bundle = loadBundle(bundleFile).exports;
} catch (e) {
  // A broken install says in one line what is missing and how to fix it (a stale or foreign code cache never
  // gets here: load-bundle.js ignores it and compiles).
  if (e && (e.code === 'ENOENT' || e.code === 'EACCES') && e.path === bundleFile) {
    const fix = require('node:fs').existsSync(path.join(root, 'Makefile'))
      ? `run 'make build' in ${root}`
      : 'reinstall tsmpiexec (npm install -g tsmpiexec, or make install from a built checkout)';
    process.stderr.write(`tsmpiexec: broken install: ${bundleFile} is ${e.code === 'ENOENT' ? 'missing' : 'unreadable'}: ${fix}\n`);
    process.exit(70);
  }
  fail(e);
}
// import() inside vm-compiled code needs an experimental flag on Node 20: chalk and ora come through ours.
bundle.setExternalImporter((specifier) => import(specifier));
if (headStart !== undefined) bundle.setCgroupHeadStart(headStart);
bundle.main(process.argv.slice(2)).then((code) => process.exit(code), fail);
