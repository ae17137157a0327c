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

let bundle;
try {
  bundle = loadBundle(path.join(__dirname, '..', 'dist', 'bundle', 'main.cjs')).exports;
} catch (e) {
  fail(e);
}
// import() inside vm-compiled code needs an experimental flag on Node 20: chalk and ora come through ours.
bundle.setExternalImporter((specifier) => import(specifier));
if (headStart !== undefined) bundle.setCgroupHeadStart(headStart);
bundle.main(process.argv.slice(2)).then((code) => process.exit(code), fail);
