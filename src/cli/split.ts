// Splits argv into MPMD segments of (options, program, program arguments), driven by the option table.
// Written by hand because Hydra's grammar is not GNU-style and yargs cannot express it faithfully:
// `-opt` and `--opt` are the same option, `-genv NAME VALUE` takes two values, a lone `:` separates
// segments, and everything after the program name belongs to the program (`-n 2 ./a -n 5` gives ./a `-n 5`).
// This module only checks the shape (known options, values present); parse.ts interprets the values.
import { allSpellings, display, findOption, optionBySpelling, type OptionDef } from './options.js';
import { nearest } from './suggest.js';
import { usageError, type TsmpiError } from '../util/errors.js';

export interface OptionUse {
  def: OptionDef;
  /** As typed, without any `=value`: `--np`, `-genv`. Error messages use it. */
  spelling: string;
  values: string[];
}

export interface RawSegment {
  options: OptionUse[];
  program?: string;
  args: string[];
}

const HELP_HINT = 'run tsmpiexec --help for the list of options';

/** `-npp` → usage error naming the nearest option. Also used for --help topics. */
export function unknownOptionError(word: string): TsmpiError {
  const m = /^(-{0,2})([^=]*)/.exec(word);
  const dashes = m?.[1] || '-';
  const bare = m?.[2] ?? word;
  // `-n4`: a known option glued to a number.
  const glued = /^([a-z][a-z-]*?)([0-9]+)$/.exec(bare);
  const gluedDef = glued?.[1] === undefined ? undefined : optionBySpelling(glued[1]);
  if (glued && gluedDef && gluedDef.arity === 1) {
    return usageError(`unknown option ${word}; did you mean ${dashes}${glued[1]} ${glued[2] ?? ''}?`, word, 'put a space between an option and its value');
  }
  const guess = nearest(bare, allSpellings());
  const shown = dashes === '' ? '-' : dashes;
  return usageError(
    `unknown option ${word === '' ? "''" : word}${guess !== undefined ? `; did you mean ${shown}${guess}?` : ''}`,
    word,
    `${HELP_HINT}; a program whose name starts with '-' goes after --`,
  );
}

/** A token that would be read as an option (so it cannot silently become a number or a path). */
function looksLikeOption(token: string): boolean {
  return token.startsWith('-') && findOption(token.split('=')[0] ?? token) !== undefined;
}

/** The values an option takes at tokens[i..]; returns them and how many tokens were used. */
function takeValues(def: OptionDef, spelling: string, inline: string | undefined, tokens: readonly string[], i: number): { values: string[]; used: number } {
  const label = spelling;
  const usable = (t: string | undefined): t is string =>
    t !== undefined && t !== ':' && (def.valueKind === 'text' || !looksLikeOption(t));
  if (def.arity === 0) {
    if (inline !== undefined) throw usageError(`${label} takes no value, got '${label}=${inline}'`, label, `write ${label} alone`);
    return { values: [], used: 0 };
  }
  if (def.optionalValue) {
    if (inline !== undefined) return { values: [inline], used: 0 };
    const t = tokens[i];
    return t !== undefined && t !== ':' ? { values: [t], used: 1 } : { values: [], used: 0 };
  }
  const want = `${label} ${def.valueName ?? 'VALUE'}`;
  let used = 0;
  let first = inline;
  if (first === undefined) {
    const t = tokens[i];
    if (!usable(t)) throw usageError(`${label} needs a value (${want})`, label, `write ${want}`);
    first = t;
    used = 1;
  }
  if (def.arity === 1) return { values: [first], used };
  // arity 2: NAME VALUE, or Hydra's NAME=VALUE in one word.
  const eq = first.indexOf('=');
  if (eq > 0) return { values: [first.slice(0, eq), first.slice(eq + 1)], used };
  const second = tokens[i + used];
  if (second === undefined || second === ':') {
    throw usageError(`${label} needs a name and a value (${want}), got only '${first}'`, label, `write ${want} or ${label} ${first}=VALUE`);
  }
  return { values: [first, second], used: used + 1 };
}

/**
 * argv → segments. Throws a usage error for an unknown option, a missing value, or a `:` with no
 * program before it or nothing after it. A segment may lack a program (checked by the caller, since
 * with -configfile the command line has none).
 */
export function splitArgs(tokens: readonly string[]): RawSegment[] {
  const segments: RawSegment[] = [{ options: [], args: [] }];
  let cur = segments[0] as RawSegment;
  let inArgs = false;
  let i = 0;
  while (i < tokens.length) {
    const t = tokens[i] as string;
    if (t === ':') {
      if (cur.program === undefined) {
        throw usageError(
          cur.options.length === 0 ? `':' with no program before it (argument ${i + 1})` : `missing program before ':' (argument ${i + 1})`,
          ':',
          'write PROGRAM [ARGS] on each side of a lone \':\'',
        );
      }
      cur = { options: [], args: [] };
      segments.push(cur);
      inArgs = false;
      i++;
      continue;
    }
    if (inArgs) {
      cur.args.push(t);
      i++;
      continue;
    }
    if (t === '--') {
      const prog = tokens[i + 1];
      if (prog === undefined || prog === ':') throw usageError("missing program after '--'", '--', "'--' ends the options; the program comes next");
      cur.program = prog;
      inArgs = true;
      i += 2;
      continue;
    }
    if (t.startsWith('-') && t !== '-') {
      const eq = t.indexOf('=');
      const spelling = eq < 0 ? t : t.slice(0, eq);
      const inline = eq < 0 ? undefined : t.slice(eq + 1);
      const def = findOption(spelling);
      if (def === undefined) throw unknownOptionError(t);
      const { values, used } = takeValues(def, spelling, inline, tokens, i + 1);
      cur.options.push({ def, spelling, values });
      i += 1 + used;
      continue;
    }
    cur.program = t;
    inArgs = true;
    i++;
  }
  if (segments.length > 1 && cur.program === undefined && cur.options.length === 0) {
    throw usageError("':' with nothing after it", ':', "remove the trailing ':' or add -n N PROGRAM after it");
  }
  return segments;
}

/** For a segment without a program: a hint when its last option swallowed what was meant as the program. */
export function swallowedProgramHint(seg: RawSegment): string | undefined {
  const last = seg.options[seg.options.length - 1];
  const v = last?.values[last.values.length - 1];
  if (last === undefined || v === undefined || last.def.arity === 0) return undefined;
  return `'${v}' was read as the value of ${last.spelling} (${display(last.def)} ${last.def.valueName ?? 'VALUE'})`;
}
