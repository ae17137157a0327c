// Checks and converts single option values (numbers, variable names, lists, stdin targets, file patterns).
// Every error names where the value came from (`-n`, `--np`, `MPIEXEC_TIMEOUT`) and says what would be accepted.
import { ERROR_CODES, TsmpiError } from '../util/errors.js';
import type { StdinTarget } from '../model/types.js';

/** The largest number any option accepts (a C int, which is what MPI ranks and counts are). */
export const MAX_NUMBER = 2 ** 31 - 1;

export function badValue(message: string, culprit: string, hint?: string): TsmpiError {
  return new TsmpiError(ERROR_CODES.BAD_VALUE, message, { culprit, hint, exitStatus: 2 });
}

/**
 * A plain decimal whole number >= min: digits only, so `1e3`, `0x10`, `+5`, `1.5`, `-1` and '' are refused,
 * as is anything above MAX_NUMBER. `label` names the source in the error (`-n`, `MPIEXEC_TIMEOUT`).
 */
export function parseWholeNumber(text: string, label: string, min: 0 | 1): number {
  const what = min === 1 ? 'a positive whole number' : 'a whole number (0 or more)';
  const hint = `write plain decimal digits${min === 1 ? ', at least 1' : ''}, e.g. ${label} ${min === 1 ? '4' : '0'}`;
  if (!/^[0-9]+$/.test(text)) throw badValue(`${label} needs ${what}, got '${text}'`, label, hint);
  const n = text.length > 12 ? Infinity : Number(text);
  if (n > MAX_NUMBER) throw badValue(`${label} value ${text} is too large (at most ${MAX_NUMBER})`, label, hint);
  if (n < min) throw badValue(`${label} needs ${what}, got '${text}'`, label, hint);
  return n;
}

const SIZE_UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** A byte size: digits with an optional binary suffix K, M, G or T (also KiB, MB, ...), at least 1 MiB. */
export function parseSize(text: string, label: string): number {
  const hint = `write a whole number with an optional K, M, G or T suffix, e.g. ${label} 512M`;
  const m = /^([0-9]{1,15})\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!m) throw badValue(`${label} needs a size, got '${text}'`, label, hint);
  const n = Number(m[1]) * (SIZE_UNITS[(m[2] ?? '').toUpperCase()] ?? 1);
  if (!Number.isSafeInteger(n)) throw badValue(`${label} value ${text} is too large`, label, hint);
  if (n < 2 ** 20) throw badValue(`${label} value ${text} is below 1 MiB, too small for any MPI rank`, label, hint);
  return n;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** An environment variable name as a shell would accept it. */
export function checkEnvName(name: string, label: string): string {
  if (!ENV_NAME.test(name)) {
    throw badValue(`${label} needs a variable name, got '${name}'`, label, 'names are letters, digits and _, not starting with a digit');
  }
  return name;
}

/** `a,b,c` → names; empty entries are refused. */
export function parseNameList(text: string, label: string): string[] {
  const names = text.split(',');
  if (names.some((n) => n === '')) {
    throw badValue(`${label} has an empty entry in '${text}'`, label, `list names with commas and no spaces: ${label} PATH,HOME`);
  }
  return names.map((n) => checkEnvName(n, label));
}

/** --stdin: `all`, `none` or a rank number (checked against the job size later, when it is known). */
export function parseStdinTarget(text: string, label: string): StdinTarget {
  if (text === 'all') return { kind: 'all' };
  if (text === 'none') return { kind: 'none' };
  if (/^[0-9]+$/.test(text)) return { kind: 'rank', rank: parseWholeNumber(text, label, 0) };
  throw badValue(`${label} needs a rank number, 'all' or 'none', got '${text}'`, label, `e.g. ${label} 0 (the default) or ${label} none`);
}

/** Output patterns: %r rank, %h host, %g process group, %p proxy, %% a percent sign; anything else after % is an error. */
export function checkFilePattern(text: string, label: string): string {
  const hint = 'use %r (rank), %h (host), %g (process group), %p (proxy) or %% (a percent sign)';
  if (text === '') throw badValue(`${label} needs a file name pattern, got ''`, label, hint);
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '%') continue;
    const c = text[i + 1];
    if (c === undefined || !'rhgp%'.includes(c)) {
      throw badValue(`${label} pattern '${text}' has an unknown escape '%${c ?? ''}'`, label, hint);
    }
    i++;
  }
  return text;
}

/** One of a fixed set of words, with synonyms (`rsh` → `ssh`). */
export function parseChoice<T extends string>(
  text: string,
  label: string,
  choices: readonly T[],
  synonyms: Readonly<Record<string, NoInfer<T>>> = {},
): T {
  const hit = choices.find((c) => c === text) ?? synonyms[text];
  if (hit !== undefined) return hit;
  throw badValue(`${label} needs one of ${choices.join(', ')}; got '${text}'`, label, `e.g. ${label} ${choices[0] ?? ''}`);
}

/** A value that must not be empty (paths, directories). */
export function nonEmpty(text: string, label: string, what: string): string {
  if (text === '') throw badValue(`${label} needs ${what}, got ''`, label, `write ${label} followed by ${what}`);
  return text;
}
