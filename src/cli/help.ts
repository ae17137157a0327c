// --help (all options, grouped, one line each) and --help OPTION (one option in full), both from the table.
import { TsmpiError } from '../util/errors.js';
import {
  dashed,
  display,
  displaySpellings,
  findOption,
  GROUPS,
  OPTIONS,
  valueSynopsis,
  type OptionDef,
} from './options.js';
import { unknownOptionError } from './split.js';
import { EXAMPLES } from './examples.js';
import { wrapParagraphs, wrapText } from './wrap.js';

const SYNOPSIS = [
  'tsmpiexec [OPTIONS] PROGRAM [ARGS...] [: [OPTIONS] PROGRAM [ARGS...]]...',
  'tsmpiexec [OPTIONS] -configfile FILE',
  'tsmpiexec --help [OPTION]',
  'tsmpiexec pmi-check [--keys N] [--json]   (run as a rank: probe the PMI server)',
];

const INTRO =
  'Run an MPI program on one or more hosts. Options take one or two dashes (-np 4, --np 4, --np=4). ' +
  "Everything after PROGRAM is passed to it; a lone ':' starts the next program (MPMD).";

/** `-n, -np N`: the left column of an option line. */
export function optionSynopsis(def: OptionDef): string {
  const v = valueSynopsis(def);
  return displaySpellings(def).join(', ') + (v === '' ? '' : ` ${v}`);
}

/** The one-line help, with the default when the option takes a value. */
export function optionSummary(def: OptionDef): string {
  return def.default !== undefined && def.arity > 0 ? `${def.help} (default ${def.default})` : def.help;
}

/** `-n, -np N        ranks to start ...`, wrapped under the help column when it does not fit. */
function optionLines(def: OptionDef, col: number, width: number): string[] {
  const left = `  ${optionSynopsis(def)}`;
  const text = optionSummary(def);
  if (width - col < 20 || left.length + 2 > col) {
    return [left, ...wrapText(text, Math.max(10, width - 6)).map((l) => `      ${l}`)];
  }
  const [first = '', ...more] = wrapText(text, width - col);
  return [left.padEnd(col) + first, ...more.map((l) => ' '.repeat(col) + l)];
}

export function renderHelp(opts: { width: number }): string {
  const width = Math.max(40, opts.width);
  const col = Math.max(...OPTIONS.map((o) => optionSynopsis(o).length + 4));
  const out: string[] = [];
  SYNOPSIS.forEach((s, k) => {
    wrapText(s, width - 9).forEach((l, j) => out.push(`${k === 0 && j === 0 ? 'Usage: ' : '       '}${j > 0 ? '  ' : ''}${l}`));
  });
  out.push('', ...wrapText(INTRO, width));
  for (const g of GROUPS) {
    const members = OPTIONS.filter((o) => o.group === g.id);
    if (members.length === 0) continue;
    out.push('', `${g.title}:`);
    for (const o of members) out.push(...optionLines(o, col, width));
  }
  const envs = OPTIONS.filter((o) => o.env !== undefined).map((o) => `${o.env} (${display(o)})`);
  if (envs.length > 0) out.push('', ...wrapText(`Environment: ${envs.join(', ')}.`, width));
  out.push('', ...wrapText('Explain one option: tsmpiexec --help OPTION. Full manual: man tsmpiexec.', width));
  out.push('', 'Examples:');
  for (const ex of EXAMPLES.filter((e) => e.inHelp)) {
    out.push(...wrapText(ex.title, width - 2).map((l) => `  ${l}`));
    for (const l of ex.lines) out.push(`    ${l}`);
  }
  return `${out.join('\n')}\n`;
}

function scopeText(def: OptionDef): string {
  if (def.scope === 'global') return 'applies to the whole job';
  if (def.jobDefaultBeforeProgram) return "applies to one program segment; before the first program, to all of them";
  return "applies to the program segment it is written in (before that segment's program)";
}

/** Every accepted way to write the option, for --help OPTION. */
function spellingsText(def: OptionDef): string {
  const v = def.arity === 0 ? '' : def.optionalValue ? ` [${def.valueName ?? 'VALUE'}]` : ` ${def.valueName ?? 'VALUE'}`;
  const forms = [def.name, ...def.aliases].flatMap((s) => [`-${s}`, `--${s}`]).map((s) => s + v);
  let text = `Written as ${forms.join(', ')}`;
  if (def.arity === 1) text += `, or with '=': ${dashed(def, def.name)}=${def.valueName ?? 'VALUE'}`;
  if (def.arity === 2) text += `, or ${dashed(def, def.name)} NAME=VALUE`;
  return `${text}.`;
}

/** --help OPTION: `genv`, `-genv`, `--genv`, or any alias. Throws a usage TsmpiError for an unknown name. */
export function renderOptionHelp(name: string): string {
  const def = findOption(name);
  if (def === undefined) throw unknownOptionError(name) satisfies TsmpiError;
  const group = GROUPS.find((g) => g.id === def.group)?.title ?? def.group;
  const facts: string[] = [`${group} option; ${scopeText(def)}.`];
  if (def.choices !== undefined && def.valueKind === 'choice') facts.push(`Values: ${def.choices.join(', ')}.`);
  if (def.default !== undefined) facts.push(`Default: ${def.default}.`);
  if (def.env !== undefined) facts.push(`Environment variable: ${def.env}.`);
  if (def.origin === 'tsmpiexec') facts.push('A tsmpiexec extension (not in Hydra).');
  const out = [
    optionSynopsis(def),
    ...wrapText(def.help, 76).map((l) => `  ${l}`),
    '',
    ...wrapParagraphs(def.man, 80, '  '),
    '',
    ...wrapParagraphs(facts.join(' '), 80, '  '),
    ...wrapParagraphs(spellingsText(def), 80, '  '),
  ];
  return `${out.join('\n')}\n`;
}
