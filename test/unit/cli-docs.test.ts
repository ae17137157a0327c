// Drift tests: the option table, the parser, --help, the committed man page and the completion scripts
// must agree; these fail when one is changed without the others (architecture principle 7).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { allSpellings, displaySpellings, GROUPS, MAN_DATE, OPTIONS, type OptionDef } from '../../src/cli/options.js';
import { optionSynopsis, optionSummary, renderHelp, renderOptionHelp } from '../../src/cli/help.js';
import { ERROR_TEXT, EXIT_TEXT, renderManPage } from '../../src/cli/man.js';
import { renderBashCompletion, renderZshCompletion } from '../../src/cli/completion.js';
import { EXAMPLES } from '../../src/cli/examples.js';
import { packageVersion } from '../../src/util/package-root.js';
import { parseArgs } from '../../src/cli/parse.js';
import { ERROR_CODES, TsmpiError } from '../../src/util/errors.js';
import { EXIT } from '../../src/run/exit-status.js';

const root = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const MAN_PATH = root('man/tsmpiexec.1');
const REGEN = 'regenerate: npx tsc -p tsconfig.json && node dist/cli/gen-man.js > man/tsmpiexec.1';

const help = renderHelp({ width: 80 });
const man = renderManPage(packageVersion(), MAN_DATE);

/** The man page as a reader sees it: roff escapes and font changes removed. */
function deroff(text: string): string {
  return text
    .replace(/\\f[BIRP]/g, '')
    .replace(/\\-/g, '-')
    .replace(/\\&/g, '')
    .replace(/\\e/g, '\\');
}

/** Words that look like options (`-np`, `--dry-run`), without any `=value`. */
function optionWords(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/(?<![\w-])(--?[A-Za-z][A-Za-z0-9-]*)/g)) out.add(m[1] as string);
  return out;
}

/** Flags of other programs that the manual mentions on purpose. */
const FOREIGN: Record<string, string> = {
  '--nodes': 'an #SBATCH directive in EXAMPLES',
  '--ntasks-per-node': 'an #SBATCH directive in EXAMPLES',
  '-p': "ssh's port option in the -launcher-exec text",
  '--keys': 'an option of the pmi-check subcommand (src/pmi-check), not of the launcher',
};

/** A value each option accepts, so every table entry is proved to parse (a new option needs one here). */
const SAMPLE: Record<string, string[]> = {
  'bind-to': ['core:2'],
  'map-by': ['ppr:1:socket'],
  'report-bindings': [],
  x: ['FOO=bar'],
  mca: ['btl', 'self,vader'],
  'allow-run-as-root': [],
  'print-all-exitcodes': [],
  'disable-auto-cleanup': [],
  'skip-launch-node': [],
  localhost: ['h1'],
  'disable-hostname-propagation': [],
  rmk: ['slurm'],
  'enable-x': [],
  'disable-x': [],
  demux: ['poll'],
  iface: ['eth0'],
  profile: [],
  'timestamp-output': [],
  'gpus-per-proc': ['2'],
  membind: ['bind:0,1'],
  n: ['2'],
  hosts: ['a,b:2'],
  f: ['hosts.txt'],
  ppn: ['2'],
  oversubscribe: [],
  configfile: ['app.conf'],
  launcher: ['ssh'],
  'launcher-exec': ['ssh -x'],
  timeout: ['60'],
  grace: ['1'],
  'launch-timeout': ['30'],
  'tree-width': ['4'],
  'no-tree': [],
  isolate: ['strict'],
  'mem-per-rank': ['512M'],
  'kvs-max-keys': ['2000000'],
  'kvs-max-bytes': ['256M'],
  'pids-per-rank': ['64'],
  report: [],
  'report-json': ['usage.json'],
  'report-html': ['job.html'],
  timing: [],
  'proxy-cmd': ['node /opt/tsmpiexec/bin/tsmpiexec.js'],
  genv: ['A', '1'],
  genvlist: ['A,B'],
  genvall: [],
  genvnone: [],
  env: ['A', '1'],
  envlist: ['A'],
  envall: [],
  envnone: [],
  wdir: ['/tmp'],
  'prepend-rank': [],
  'prepend-pattern': ['[%r@%h] '],
  'outfile-pattern': ['o.%r'],
  'errfile-pattern': ['e.%r'],
  stdin: ['all'],
  'pmi-transport': ['tcp'],
  mpi: ['openmpi', 'pmix'],
  usize: ['INFINITE'],
  tmp: ['host'],
  'pmi-port': [],
  'dry-run': [],
  json: [],
  verbose: [],
  version: [],
  help: ['np'],
};

describe('the option table', () => {
  it('has unique spellings and sane entries', () => {
    const spellings = OPTIONS.flatMap((o) => [o.name, ...o.aliases]);
    expect(new Set(spellings).size).toBe(spellings.length);
    for (const o of OPTIONS) {
      expect(o.help.length, o.name).toBeGreaterThan(0);
      expect(o.man.length, o.name).toBeGreaterThan(0);
      expect(o.arity === 0 || o.valueName !== undefined, `${o.name} names its value`).toBe(true);
      expect(GROUPS.some((g) => g.id === o.group), o.name).toBe(true);
    }
  });

  it('every option parses with a sample value, with one dash and with two', () => {
    expect(Object.keys(SAMPLE).sort()).toEqual(OPTIONS.map((o) => o.name).sort());
    for (const o of OPTIONS) {
      const values = SAMPLE[o.name] ?? [];
      for (const dashes of ['-', '--']) {
        const argv = o.name === 'configfile' ? [`${dashes}${o.name}`, ...values] : [`${dashes}${o.name}`, ...values, './a'];
        const extra = o.name === 'json' ? ['--dry-run'] : [];
        const r = parseArgs([...extra, ...argv], {}, () => './b');
        expect(r.kind, `${dashes}${o.name}`).toBe(o.name === 'help' ? 'help' : o.name === 'version' ? 'version' : 'run');
      }
    }
  });
});

describe('--help', () => {
  it('fits 80 columns', () => {
    for (const line of help.split('\n')) expect(line.length, line).toBeLessThanOrEqual(80);
  });

  it('fits a narrower terminal too', () => {
    for (const line of renderHelp({ width: 60 }).split('\n')) {
      if (line.startsWith('    tsmpiexec') || line.startsWith('    #')) continue; // example commands are not wrapped
      expect(line.length, line).toBeLessThanOrEqual(60);
    }
  });

  it('lists every option on one line with its help, grouped in the table order', () => {
    const lines = help.split('\n');
    for (const o of OPTIONS) {
      const line = lines.find((l) => l.startsWith(`  ${optionSynopsis(o)} `));
      expect(line, o.name).toBeDefined();
      expect(line?.trimEnd().endsWith(optionSummary(o)), o.name).toBe(true);
    }
    const titles = GROUPS.filter((g) => OPTIONS.some((o) => o.group === g.id)).map((g) => `${g.title}:`);
    const found = lines.filter((l) => titles.includes(l));
    expect(found).toEqual(titles);
  });

  it('mentions only options that exist', () => {
    const known = new Set(allSpellings());
    expect(optionWords(help).size).toBeGreaterThan(OPTIONS.length);
    for (const w of optionWords(help)) {
      if (FOREIGN[w] !== undefined) continue;
      expect(known.has(w.replace(/^--?/, '')), `${w} in --help`).toBe(true);
    }
  });

  it('ends with the three help examples', () => {
    const shown = EXAMPLES.filter((e) => e.inHelp);
    expect(shown).toHaveLength(3);
    const tail = help.slice(help.indexOf('\nExamples:\n'));
    for (const ex of shown) for (const l of ex.lines) expect(tail).toContain(`    ${l}\n`);
    expect(help.trimEnd().endsWith(shown[2]?.lines.at(-1) ?? '?')).toBe(true);
  });
});

describe('--help OPTION', () => {
  it('explains every option, however it is written', () => {
    for (const o of OPTIONS) {
      const text = renderOptionHelp(o.name);
      expect(text.startsWith(optionSynopsis(o))).toBe(true);
      expect(text.replace(/\s+/g, ' ')).toContain(o.man.split('\n\n')[0]?.replace(/\s+/g, ' ').slice(0, 40));
      for (const s of [o.name, ...o.aliases]) {
        expect(renderOptionHelp(`-${s}`)).toBe(text);
        expect(renderOptionHelp(`--${s}`)).toBe(text);
      }
      if (o.env !== undefined) expect(text).toContain(o.env);
      if (o.default !== undefined) expect(text).toContain(`Default: ${o.default}`);
      for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    }
  });

  it('rejects an unknown option with a suggestion', () => {
    let e: unknown;
    try {
      renderOptionHelp('-genvv');
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(TsmpiError);
    expect((e as TsmpiError).code).toBe('usage');
    expect((e as TsmpiError).message).toContain('did you mean -genv');
  });
});

describe('man/tsmpiexec.1', () => {
  const text = deroff(man);

  it('is the committed file (' + REGEN + ')', () => {
    expect(readFileSync(MAN_PATH, 'utf8')).toBe(man);
  });

  it('has the sections in order', () => {
    const sections = [...man.matchAll(/^\.SH (.*)$/gm)].map((m) => (m[1] as string).replace(/"/g, ''));
    expect(sections).toEqual([
      'NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'ENVIRONMENT', 'EXIT STATUS', 'ERRORS', 'FILES', 'SECURITY', 'EXAMPLES', 'SEE ALSO',
    ]);
    const groups = [...man.matchAll(/^\.SS (.*)$/gm)].map((m) => m[1]);
    expect(groups).toEqual(GROUPS.filter((g) => OPTIONS.some((o) => o.group === g.id)).map((g) => g.title));
  });

  it('documents every option with every spelling and its man text', () => {
    const flat = text.replace(/\s+/g, ' ');
    for (const o of OPTIONS) {
      const head = displaySpellings(o).join(', ');
      expect(text, o.name).toContain(head);
      for (const para of o.man.split(/\n\s*\n/)) expect(flat, o.name).toContain(para.replace(/\s+/g, ' '));
      if (o.env !== undefined) expect(text).toMatch(new RegExp(`^${o.env}$`, 'm'));
    }
  });

  it('mentions only options that exist', () => {
    const known = new Set(allSpellings());
    expect(optionWords(text).size).toBeGreaterThan(OPTIONS.length);
    for (const w of optionWords(text)) {
      if (FOREIGN[w] !== undefined) continue;
      expect(known.has(w.replace(/^--?/, '')), `${w} in the man page`).toBe(true);
    }
  });

  it('describes every exit status and error code', () => {
    const exitSection = text.slice(text.indexOf('.SH "EXIT STATUS"'), text.indexOf('.SH ERRORS'));
    for (const [key, value] of Object.entries(EXIT)) {
      expect(EXIT_TEXT[key], `EXIT.${key} needs a line in EXIT_TEXT (src/cli/man.ts)`).toBeDefined();
      expect(exitSection).toMatch(new RegExp(`^${value}$`, 'm'));
      expect(exitSection.replace(/\s+/g, ' ')).toContain(EXIT_TEXT[key]);
    }
    const errorSection = text.slice(text.indexOf('.SH ERRORS'), text.indexOf('.SH FILES'));
    for (const code of Object.values(ERROR_CODES)) {
      expect(ERROR_TEXT[code], `error code ${code} needs a line in ERROR_TEXT (src/cli/man.ts)`).toBeDefined();
      expect(errorSection).toMatch(new RegExp(`^${code}$`, 'm'));
    }
  });

  it('shows every example and the SEE ALSO pages', () => {
    for (const ex of EXAMPLES) for (const l of ex.lines) expect(text).toContain(l);
    for (const page of ['mpiexec.hydra', 'srun', 'ssh']) expect(man).toMatch(new RegExp(`^\\.BR ${page.replace('.', '\\.')} \\(1\\)`, 'm'));
  });

  const manBinary = spawnSync('man', ['--version'], { timeout: 5000 }).status === 0;
  // man-db is installed on the project's machines and CI; elsewhere this one check cannot run.
  it.skipIf(!manBinary)('renders without warnings (skipped: man-db not installed)', () => {
    const r = spawnSync('man', ['--warnings', '-l', MAN_PATH], {
      env: { ...process.env, MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat' },
      encoding: 'utf8',
      timeout: 10_000,
      killSignal: 'SIGKILL',
    });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('TSMPIEXEC(1)');
  });
});

describe('completions', () => {
  const cases: Array<[string, string]> = [
    ['completions/tsmpiexec.bash', renderBashCompletion()],
    ['completions/_tsmpiexec', renderZshCompletion()],
  ];
  for (const [path, rendered] of cases) {
    it(`${path} is the committed file (regenerate: node dist/cli/gen-completion.js ${path.endsWith('bash') ? 'bash' : 'zsh'})`, () => {
      expect(readFileSync(root(path), 'utf8')).toBe(rendered);
    });
    it(`${path} knows every spelling and every arity`, () => {
      for (const o of OPTIONS as readonly OptionDef[]) {
        for (const s of [o.name, ...o.aliases]) expect(rendered).toMatch(new RegExp(`[ (|]--?${s.replace(/[-]/g, '\\-')}[ |)]`));
      }
    });
  }
});
