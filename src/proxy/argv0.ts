// A rank's argv[0] as the user typed it, through the isolation's wrappers. The native helper's exec step takes
// `--argv0 NAME`; sh, nsenter, taskset and numactl run their program with argv[0] = its path, so behind them the
// program sees its resolved path instead (the fallback without the helper).
import path from 'node:path';
import { NATIVE_HELPER_RELPATH } from '../isolate/native.js';

const HELPER_NAME = path.basename(NATIVE_HELPER_RELPATH);

/** `argv` (a wrapper's, ending in FILE ARGS...) with argv0 given to the helper step that execs FILE, if any. */
export function applyArgv0(argv: readonly string[], file: string, argv0: string | undefined): string[] {
  if (argv0 === undefined || argv0 === file || argv[1] !== 'exec' || path.basename(argv[0] ?? '') !== HELPER_NAME) return [...argv];
  const sep = argv.indexOf('--');
  if (sep < 2 || argv[sep + 1] !== file) return [...argv];
  return [...argv.slice(0, sep), '--argv0', argv0, ...argv.slice(sep)];
}
