// Find a rank's program before anything is launched, so a typo is one clear line instead of N failed ranks.
import fs from 'node:fs';
import path from 'node:path';
import { TsmpiError, ERROR_CODES } from '../util/errors.js';
import { EXIT } from './exit-status.js';

function executableFile(p: string): 'ok' | 'missing' | 'not-executable' | 'directory' {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return 'missing';
  }
  if (st.isDirectory()) return 'directory';
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return 'ok';
  } catch {
    return 'not-executable';
  }
}

/** An absolute path for `program`, resolved against `cwd` (if it has a slash) or the rank's PATH. */
export function resolveProgram(program: string, cwd: string, pathVar: string | undefined): string {
  const fail = (what: string, hint: string): never => {
    throw new TsmpiError(ERROR_CODES.PROGRAM, what, { culprit: program, hint, exitStatus: EXIT.LAUNCH_FAILED });
  };
  if (program === '') fail('empty program name', 'name the program to run after the options');
  if (program.includes('/')) {
    const abs = path.resolve(cwd, program);
    const s = executableFile(abs);
    if (s === 'ok') return abs;
    if (s === 'missing') fail('program not found', `no such file: ${abs}`);
    if (s === 'directory') fail('program is a directory', `${abs} is a directory`);
    fail('program is not executable', `chmod +x ${abs}, or run it through its interpreter`);
  }
  for (const dir of (pathVar ?? '').split(':')) {
    if (dir === '') continue;
    const cand = path.resolve(cwd, dir, program);
    if (executableFile(cand) === 'ok') return cand;
  }
  return fail('program not found in PATH', 'give a path such as ./' + program + ', or fix PATH');
}

/**
 * A segment's program, found as Hydra finds it: through the ranks' PATH when they have one, else the
 * launcher's (-genvnone gives the ranks no PATH at all, and hostname must still be found).
 */
export function resolveSegmentProgram(program: string, cwd: string, rankEnv: Record<string, string>, launcherEnv: Record<string, string | undefined>): string {
  return resolveProgram(program, cwd, rankEnv.PATH ?? launcherEnv.PATH);
}

/** The working directory must exist before any rank starts. */
export function checkWorkdir(dir: string): void {
  let ok = false;
  try {
    ok = fs.statSync(dir).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new TsmpiError(ERROR_CODES.BAD_VALUE, 'working directory does not exist', {
      culprit: dir,
      hint: 'check -wdir; it must be a directory on every host',
      exitStatus: EXIT.USAGE,
    });
  }
}
