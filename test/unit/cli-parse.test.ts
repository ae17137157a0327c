// argv → JobRequest, and bad command lines → stable error codes with messages naming the culprit.
import { describe, expect, it } from 'vitest';
import { parseArgs, type CliResult } from '../../src/cli/parse.js';
import { OPTIONS } from '../../src/cli/options.js';
import { TsmpiError } from '../../src/util/errors.js';
import type { JobRequest, Segment } from '../../src/model/types.js';

type Env = Record<string, string | undefined>;

function fileReader(files: Record<string, string>): (p: string) => string {
  return (p) => {
    const text = files[p];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
    return text;
  };
}

function request(argv: string[], env: Env = {}, files: Record<string, string> = {}): JobRequest {
  const r = parseArgs(argv, env, fileReader(files));
  if (r.kind !== 'run') throw new Error(`expected a run, got ${r.kind}`);
  return r.request;
}

function seg(index: number, program: string, args: string[] = [], more: Partial<Segment> = {}): Segment {
  return { index, program, args, env: { set: [] }, ...more };
}

/** The request for `argv` with nothing but defaults, plus overrides. */
function expected(segments: Segment[], more: Partial<JobRequest> = {}): JobRequest {
  return {
    segments,
    genv: { policy: { kind: 'all' }, set: [] },
    prependRank: false,
    stdin: { kind: 'rank', rank: 0 },
    dryRun: false,
    json: false,
    verbose: false,
    graceSec: 5,
    launchTimeoutSec: 60,
    treeWidth: 32,
    noTree: false,
    pmiTransport: 'fd',
    mpi: 'auto',
    isolate: 'auto',
    bindTo: { kind: 'default' },
    reportBindings: false,
    report: false,
    timing: false,
    ...more,
  };
}

describe('parseArgs: argv → JobRequest', () => {
  const cases: Array<{ name: string; argv: string[]; env?: Env; files?: Record<string, string>; want: JobRequest }> = [
    { name: 'just a program', argv: ['./a'], want: expected([seg(0, './a')]) },
    { name: '-n 4', argv: ['-n', '4', './a'], want: expected([seg(0, './a', [], { np: 4 })]) },
    { name: '-np with one dash', argv: ['-np', '4', './a'], want: expected([seg(0, './a', [], { np: 4 })]) },
    { name: '--np with two dashes', argv: ['--np', '4', './a'], want: expected([seg(0, './a', [], { np: 4 })]) },
    { name: '--np=4', argv: ['--np=4', './a'], want: expected([seg(0, './a', [], { np: 4 })]) },
    { name: '-np=4', argv: ['-np=4', './a'], want: expected([seg(0, './a', [], { np: 4 })]) },
    {
      name: 'program args that look like options belong to the program',
      argv: ['-n', '2', './a', '-n', '5', '--help', '-genv', 'X'],
      want: expected([seg(0, './a', ['-n', '5', '--help', '-genv', 'X'], { np: 2 })]),
    },
    {
      name: '-- before a program whose name starts with a dash',
      argv: ['-n', '1', '--', '-weird', '-x'],
      want: expected([seg(0, '-weird', ['-x'], { np: 1 })]),
    },
    {
      name: 'MPMD segments with per-segment options and args',
      argv: ['-n', '1', './coord', 'in.dat', ':', '-n', '8', '-env', 'ROLE', 'worker', './work', '-v'],
      want: expected([
        seg(0, './coord', ['in.dat'], { np: 1 }),
        seg(1, './work', ['-v'], { np: 8, env: { set: [['ROLE', 'worker']] } }),
      ]),
    },
    {
      name: 'three segments, the middle one without -n',
      argv: ['-n', '1', 'a', ':', 'b', ':', '-np', '3', 'c'],
      want: expected([seg(0, 'a', [], { np: 1 }), seg(1, 'b'), seg(2, 'c', [], { np: 3 })]),
    },
    {
      name: 'global options after a colon still apply to the job',
      argv: ['-n', '1', 'a', ':', '-ppn', '2', '-n', '1', 'b'],
      want: expected([seg(0, 'a', [], { np: 1 }), seg(1, 'b', [], { np: 1 })], { ppn: 2 }),
    },
    {
      name: '-genv keeps its order, NAME=VALUE form too, values may start with a dash',
      argv: ['-genv', 'B', '2', '--genv', 'A=1', '-genv', 'CFLAGS', '-O2', '-genv', 'EMPTY', '', './a'],
      want: expected([seg(0, './a')], {
        genv: { policy: { kind: 'all' }, set: [['B', '2'], ['A', '1'], ['CFLAGS', '-O2'], ['EMPTY', '']] },
      }),
    },
    {
      name: '-genv=NAME VALUE',
      argv: ['-genv=A', 'x y', './a'],
      want: expected([seg(0, './a')], { genv: { policy: { kind: 'all' }, set: [['A', 'x y']] } }),
    },
    {
      name: '-genvnone with -genv',
      argv: ['-genvnone', '-genv', 'A', '1', './a'],
      want: expected([seg(0, './a')], { genv: { policy: { kind: 'none' }, set: [['A', '1']] } }),
    },
    {
      name: "Open MPI's -x NAME=VALUE and --mca NAME VALUE set variables; -x NAME joins a -genvnone/-genvlist list",
      argv: ['-genvnone', '-x', 'A=1=2', '-x', 'HOME', '--mca', 'btl', 'self,vader', '-x', 'PATH', './a'],
      want: expected([seg(0, './a')], { genv: { policy: { kind: 'list', names: ['HOME', 'PATH'] }, set: [['A', '1=2'], ['OMPI_MCA_btl', 'self,vader']] } }),
    },
    {
      name: "-x NAME without a narrowed policy changes nothing (everything passes); --npernode is -ppn; --tag-output is -l",
      argv: ['-x', 'HOME', '--npernode', '3', '--tag-output', './a'],
      want: expected([seg(0, './a')], { ppn: 3, prependRank: true }),
    },
    {
      name: "options of other launchers' scripts without effect are noted, -print-all-exitcodes is kept",
      argv: ['-rmk', 'slurm', '-demux', 'poll', '-disable-x', '-print-all-exitcodes', '--allow-run-as-root', './a'],
      want: expected([seg(0, './a')], { noEffect: ['-rmk', '-demux', '-disable-x'], printAllExitcodes: true }),
    },
    {
      name: '-genvlist twice adds up',
      argv: ['-genvlist', 'PATH,HOME', '-genvlist', 'USER', './a'],
      want: expected([seg(0, './a')], { genv: { policy: { kind: 'list', names: ['PATH', 'HOME', 'USER'] }, set: [] } }),
    },
    {
      name: 'per-segment env policies',
      argv: ['-envlist', 'A,B', './a', ':', '-envnone', '-env', 'X', '1', './b', ':', '-envall', './c'],
      want: expected([
        seg(0, './a', [], { env: { policy: { kind: 'list', names: ['A', 'B'] }, set: [] } }),
        seg(1, './b', [], { env: { policy: { kind: 'none' }, set: [['X', '1']] } }),
        seg(2, './c', [], { env: { policy: { kind: 'all' }, set: [] } }),
      ]),
    },
    {
      name: '-wdir before the first program is the job default; after a colon, per segment',
      argv: ['-wdir', '/w', '-n', '1', 'a', ':', '-wdir', '/x', 'b'],
      want: expected([seg(0, 'a', [], { np: 1 }), seg(1, 'b', [], { wdir: '/x' })], { wdir: '/w' }),
    },
    {
      name: '-hosts before the first program is the job list; after a colon, per segment',
      argv: ['-hosts', 'a,b:4,a', '-n', '1', 'x', ':', '-host', 'c', 'y'],
      want: expected([seg(0, 'x', [], { np: 1 }), seg(1, 'y', [], { hosts: [{ name: 'c' }] })], {
        hosts: [{ name: 'a', slots: 2 }, { name: 'b', slots: 4 }],
      }),
    },
    {
      name: 'host file, ppn, launcher with rsh as ssh, launcher-exec split like a shell',
      argv: ['-machinefile', 'hosts.txt', '-ppn', '2', '-launcher', 'rsh', '-launcher-exec', 'ssh -p 2222 -o "Opt=a b"', './a'],
      want: expected([seg(0, './a')], {
        hostfile: 'hosts.txt',
        ppn: 2,
        launcher: 'ssh',
        launcherExec: ['ssh', '-p', '2222', '-o', 'Opt=a b'],
      }),
    },
    {
      name: 'io options',
      argv: ['-l', '-outfile-pattern', 'out.%r.%h', '--errfile-pattern=err.%g.%%', './a'],
      want: expected([seg(0, './a')], { prependRank: true, outfilePattern: 'out.%r.%h', errfilePattern: 'err.%g.%%' }),
    },
    { name: '--stdin all', argv: ['--stdin', 'all', './a'], want: expected([seg(0, './a')], { stdin: { kind: 'all' } }) },
    { name: '--stdin none', argv: ['--stdin=none', './a'], want: expected([seg(0, './a')], { stdin: { kind: 'none' } }) },
    { name: '--stdin 3', argv: ['-stdin', '3', './a'], want: expected([seg(0, './a')], { stdin: { kind: 'rank', rank: 3 } }) },
    { name: '-pmi-port', argv: ['-pmi-port', './a'], want: expected([seg(0, './a')], { pmiTransport: 'tcp' }) },
    { name: '--pmi-transport unix', argv: ['--pmi-transport', 'unix', './a'], want: expected([seg(0, './a')], { pmiTransport: 'unix' }) },
    {
      name: 'reporting flags',
      argv: ['--dry-run', '--json', '-v', './a'],
      want: expected([seg(0, './a')], { dryRun: true, json: true, verbose: true }),
    },
    {
      name: '--timing and --report-html',
      argv: ['--timing', '--report-html', 'job.html', './a'],
      want: expected([seg(0, './a')], { timing: true, reportHtml: 'job.html' }),
    },
    { name: 'MPIEXEC_TIMEOUT gives the default', argv: ['./a'], env: { MPIEXEC_TIMEOUT: '30' }, want: expected([seg(0, './a')], { timeoutSec: 30 }) },
    {
      name: '-timeout wins over MPIEXEC_TIMEOUT (which is then not read)',
      argv: ['-timeout', '10', './a'],
      env: { MPIEXEC_TIMEOUT: 'garbage' },
      want: expected([seg(0, './a')], { timeoutSec: 10 }),
    },
    { name: 'an empty MPIEXEC_TIMEOUT means none', argv: ['./a'], env: { MPIEXEC_TIMEOUT: '' }, want: expected([seg(0, './a')]) },
    { name: 'TSMPIEXEC_GRACE', argv: ['./a'], env: { TSMPIEXEC_GRACE: '0' }, want: expected([seg(0, './a')], { graceSec: 0 }) },
    { name: '--grace 12', argv: ['--grace', '12', './a'], want: expected([seg(0, './a')], { graceSec: 12 }) },
    {
      name: '-configfile replaces the segments; global options from the command line and the file',
      argv: ['-genv', 'G', '1', '-wdir', '/w', '-configfile', 'app.conf'],
      files: {
        'app.conf': [
          '# coordinator',
          '-n 1 ./coord "in put.dat"   # trailing comment',
          '',
          '-n 4 -env ROLE worker \\',
          '   -wdir /x ./work -v',
          '-ppn 2 -n 2 ./b : -n 1 ./c',
        ].join('\n'),
      },
      want: expected(
        [
          seg(0, './coord', ['in put.dat'], { np: 1 }),
          seg(1, './work', ['-v'], { np: 4, env: { set: [['ROLE', 'worker']] }, wdir: '/x' }),
          seg(2, './b', [], { np: 2 }),
          seg(3, './c', [], { np: 1 }),
        ],
        { genv: { policy: { kind: 'all' }, set: [['G', '1']] }, wdir: '/w', ppn: 2 },
      ),
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(request(c.argv, c.env, c.files)).toEqual(c.want);
    });
  }

  it('leaves the caller\'s argv untouched and copies program args', () => {
    const argv = ['-n', '2', './a', 'x'];
    const r = request(argv);
    r.segments[0]?.args.push('y');
    expect(argv).toEqual(['-n', '2', './a', 'x']);
  });

  it('defaults match the table (the documented defaults are the real ones)', () => {
    const r = request(['./a']);
    const def = (name: string) => OPTIONS.find((o) => o.name === name)?.default;
    expect(String(r.graceSec)).toBe(def('grace'));
    expect(r.pmiTransport).toBe(def('pmi-transport'));
    expect(r.stdin).toEqual({ kind: 'rank', rank: Number(def('stdin')) });
    expect(def('genvall')).toBeDefined();
    expect(r.genv.policy).toEqual({ kind: 'all' });
  });
});

describe('parseArgs: help and version', () => {
  const cases: Array<[string[], CliResult]> = [
    [['--help'], { kind: 'help' }],
    [['-h'], { kind: 'help' }],
    [['-help'], { kind: 'help' }],
    [['--help', '-genv'], { kind: 'help', topic: '-genv' }],
    [['--help', 'genv'], { kind: 'help', topic: 'genv' }],
    [['--help=np'], { kind: 'help', topic: 'np' }],
    [['-n', 'abc', '--help'], { kind: 'help' }],
    [['--version'], { kind: 'version' }],
    [['-n', '2', '--version', './a'], { kind: 'version' }],
  ];
  for (const [argv, want] of cases) {
    it(argv.join(' '), () => {
      expect(parseArgs(argv, {}, fileReader({}))).toEqual(want);
    });
  }

  it('--help after the program belongs to the program', () => {
    expect(request(['./a', '--help']).segments[0]?.args).toEqual(['--help']);
  });
});

describe('parseArgs: bad input', () => {
  const bad: Array<{ argv: string[]; env?: Env; files?: Record<string, string>; code: string; has: string[] }> = [
    { argv: ['-n', '0', './a'], code: 'bad-value', has: ['-n', "'0'"] },
    { argv: ['-n', '-1', './a'], code: 'bad-value', has: ['-n', "'-1'"] },
    { argv: ['-n', 'abc', './a'], code: 'bad-value', has: ['-n', "'abc'"] },
    { argv: ['-n', '1.5', './a'], code: 'bad-value', has: ["'1.5'"] },
    { argv: ['-n', '1e3', './a'], code: 'bad-value', has: ["'1e3'"] },
    { argv: ['-n', '0x10', './a'], code: 'bad-value', has: ["'0x10'"] },
    { argv: ['-n', '+5', './a'], code: 'bad-value', has: ["'+5'"] },
    { argv: ['-n', '', './a'], code: 'bad-value', has: ["''"] },
    { argv: ['-n', '2147483648', './a'], code: 'bad-value', has: ['too large', '2147483647'] },
    { argv: ['-np=99999999999999999999', './a'], code: 'bad-value', has: ['too large'] },
    { argv: ['-n'], code: 'usage', has: ['-n needs a value'] },
    { argv: ['--np', '-genv', 'A', 'B', './a'], code: 'usage', has: ['--np needs a value'] },
    { argv: ['-ppn', '0', './a'], code: 'bad-value', has: ['-ppn'] },
    { argv: ['-timeout', '-3', './a'], code: 'bad-value', has: ['-timeout', "'-3'"] },
    { argv: ['--grace', 'soon', './a'], code: 'bad-value', has: ['--grace'] },
    { argv: ['-genv'], code: 'usage', has: ['-genv needs a value'] },
    { argv: ['-genv', 'A'], code: 'usage', has: ['-genv', "only 'A'"] },
    { argv: ['-genv', 'A', ':', 'x'], code: 'usage', has: ['-genv', "only 'A'"] },
    { argv: ['-genv', 'A', './a'], code: 'usage', has: ['missing program'] },
    { argv: ['-genv', '1A', 'x', './a'], code: 'bad-value', has: ['-genv', "'1A'"] },
    { argv: ['-hosts', ',', './a'], code: 'bad-value', has: ['-hosts', 'empty host list'] },
    { argv: ['-hosts', 'a,,b', './a'], code: 'bad-value', has: ['empty entry 2'] },
    { argv: ['-hosts', 'a:x', './a'], code: 'bad-value', has: ["'a:x'"] },
    { argv: [], code: 'usage', has: ['missing program'] },
    { argv: ['-n', '2'], code: 'usage', has: ['missing program'] },
    { argv: ['-n', '2', './a', ':'], code: 'usage', has: ["':' with nothing after it"] },
    { argv: ['-n', '2', './a', ':', '-n', '1'], code: 'usage', has: ['missing program in segment 2'] },
    { argv: [':', './a'], code: 'usage', has: ["':' with no program before it"] },
    { argv: ['./a', ':', ':', './b'], code: 'usage', has: ["':' with no program before it"] },
    { argv: ['--', ':'], code: 'usage', has: ["missing program after '--'"] },
    { argv: ['-npp', '3', './a'], code: 'usage', has: ['unknown option -npp; did you mean -np?'] },
    { argv: ['--dryrun', './a'], code: 'usage', has: ['unknown option --dryrun; did you mean --dry-run?'] },
    { argv: ['-n4', './a'], code: 'usage', has: ['unknown option -n4; did you mean -n 4?'] },
    { argv: ['-xyzzyq', './a'], code: 'usage', has: ['unknown option -xyzzyq'] },
    { argv: ['--help', 'nosuch'], code: 'usage', has: ['unknown option nosuch'] },
    { argv: ['-n', '2', '-n', '3', './a'], code: 'usage', has: ['-n given twice'] },
    { argv: ['-ppn', '1', 'a', ':', '-ppn', '2', 'b'], code: 'usage', has: ['-ppn given twice'] },
    { argv: ['-genvall', '-genvnone', './a'], code: 'usage', has: ['-genvnone conflicts with -genvall'] },
    { argv: ['-pmi-port', '--pmi-transport', 'fd', './a'], code: 'usage', has: ['--pmi-transport conflicts with -pmi-port'] },
    { argv: ['-hosts', 'a', '-f', 'h', './a'], code: 'usage', has: ['-f conflicts with -hosts'] },
    { argv: ['--dry-run=yes', './a'], code: 'usage', has: ['--dry-run takes no value'] },
    { argv: ['-launcher', 'pbs', './a'], code: 'bad-value', has: ['-launcher', "'pbs'", 'fork, ssh, slurm'] },
    { argv: ['--pmi-transport', 'udp', './a'], code: 'bad-value', has: ["'udp'"] },
    { argv: ['--stdin', 'rank0', './a'], code: 'bad-value', has: ['--stdin', "'rank0'"] },
    { argv: ['--stdin', '-1', './a'], code: 'bad-value', has: ['--stdin', "'-1'"] },
    { argv: ['--stdin', '-l', './a'], code: 'usage', has: ['--stdin needs a value'] },
    { argv: ['-launcher-exec', 'ssh "unclosed', './a'], code: 'bad-value', has: ['-launcher-exec', 'unterminated'] },
    { argv: ['-launcher-exec', '  ', './a'], code: 'bad-value', has: ['-launcher-exec needs a command'] },
    { argv: ['-outfile-pattern', 'out.%x', './a'], code: 'bad-value', has: ['-outfile-pattern', '%x'] },
    { argv: ['-errfile-pattern', 'err%', './a'], code: 'bad-value', has: ['-errfile-pattern'] },
    { argv: ['-genvlist', 'A,,B', './a'], code: 'bad-value', has: ['-genvlist', 'empty entry'] },
    { argv: ['-wdir', '', './a'], code: 'bad-value', has: ['-wdir'] },
    { argv: ['--json', './a'], code: 'usage', has: ['--json', '--dry-run'] },
    { argv: ['./a'], env: { MPIEXEC_TIMEOUT: 'ten' }, code: 'bad-value', has: ['MPIEXEC_TIMEOUT', "'ten'"] },
    { argv: ['./a'], env: { MPIEXEC_TIMEOUT: '0' }, code: 'bad-value', has: ['MPIEXEC_TIMEOUT'] },
    { argv: ['./a'], env: { TSMPIEXEC_GRACE: '-1' }, code: 'bad-value', has: ['TSMPIEXEC_GRACE'] },
    { argv: ['-configfile', 'c', './a'], files: { c: './x' }, code: 'usage', has: ['-configfile', "'./a' follows"] },
    { argv: ['-n', '2', '-configfile', 'c'], files: { c: './x' }, code: 'usage', has: ['-n belongs to a program'] },
    { argv: ['-configfile', 'missing'], code: 'configfile', has: ['missing', 'ENOENT'] },
    { argv: ['-configfile', 'c'], files: { c: '# nothing\n\n' }, code: 'configfile', has: ['names no program'] },
    { argv: ['-configfile', 'c'], files: { c: '-n 1 ./a\n-n zero ./b\n' }, code: 'configfile', has: ['c:2:', '-n', "'zero'"] },
    { argv: ['-configfile', 'c'], files: { c: '-n 1 ./a\n\n-npp 2 ./b\n' }, code: 'configfile', has: ['c:3:', 'did you mean -np?'] },
    { argv: ['-configfile', 'c'], files: { c: '-n 1 "./a\n' }, code: 'configfile', has: ['c:1:', 'unterminated'] },
    { argv: ['-configfile', 'c'], files: { c: '-configfile d ./a\n' }, code: 'configfile', has: ['c:1:', 'inside a config file'] },
    { argv: ['-configfile', 'c'], files: { c: '-ppn 1 ./a\n-ppn 2 ./b\n' }, code: 'configfile', has: ['c:2:', '-ppn given twice'] },
  ];
  for (const b of bad) {
    const title = `${JSON.stringify(b.argv)}${b.env ? ` with ${JSON.stringify(b.env)}` : ''} → ${b.code}`;
    it(title, () => {
      let caught: unknown;
      try {
        parseArgs(b.argv, b.env ?? {}, fileReader(b.files ?? {}));
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(TsmpiError);
      const e = caught as TsmpiError;
      expect(e.code).toBe(b.code);
      expect(e.exitStatus).toBe(2);
      expect(e.hint, 'every error has a hint').toBeTruthy();
      expect(e.culprit, 'every error names a culprit').toBeTruthy();
      for (const fragment of b.has) expect(e.message).toContain(fragment);
    });
  }

  it('a missing program after an option that took it says so', () => {
    try {
      parseArgs(['-genv', 'A', './a'], {}, fileReader({}));
      expect.unreachable();
    } catch (e) {
      expect((e as TsmpiError).hint).toContain("'./a' was read as the value of -genv");
    }
  });
});
