#!/usr/bin/env node
// Thin shim: everything lives in dist/bundle/ (built by `make build`).
import { main } from '../dist/bundle/main.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`tsmpiexec: internal error: ${e && e.stack ? e.stack : e}\n`);
    process.exit(70);
  },
);
