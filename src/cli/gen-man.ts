// Writes the man page to stdout: `node dist/cli/gen-man.js > man/tsmpiexec.1` (after tsc).
import { renderManPage } from './man.js';
import { MAN_DATE } from './options.js';
import { packageVersion } from '../util/package-root.js';

process.stdout.write(renderManPage(packageVersion(), MAN_DATE));
