// argv (+ environment, + -configfile) → JobRequest, or a request for help or the version. Pure: the
// environment and file reading are passed in. split.ts finds the options and segments; this module gives
// each option its meaning (one interpreter per table entry, enforced by the compiler) and checks values.
import type { EnvPolicy, HostSpec, JobRequest, Segment } from '../model/types.js';
import { ERROR_CODES, TsmpiError, usageError } from '../util/errors.js';
import { display, findOption, OPTIONS, type OptionDef, type OptionName } from './options.js';
import { splitArgs, swallowedProgramHint, unknownOptionError, type OptionUse, type RawSegment } from './split.js';
import { parseHostList } from './hostlist.js';
import { ShellWordsError, splitShellWords } from './shell-words.js';
import { configLines } from './configfile.js';
import { parseBindTo, parseMapBy, parseMembind } from '../binding/policy.js';
import { DEFAULT_KVS_LIMITS } from '../pmi/types.js';
import {
  badValue,
  checkEnvName,
  checkFilePattern,
  nonEmpty,
  parseChoice,
  parseNameList,
  parseStdinTarget,
  parseWholeNumber,
  parseSize,
} from './values.js';

export type CliResult = { kind: 'run'; request: JobRequest } | { kind: 'help'; topic?: string } | { kind: 'version' };

type SegmentDraft = Omit<Segment, 'program' | 'index'> & { program?: string };

/** What an option acts on: the job, and the segment when the option is used at segment level. */
interface Target {
  job: JobRequest;
  seg: SegmentDraft | undefined;
}

type Interpret = (t: Target, values: readonly string[], label: string) => void;

const USAGE = 'usage: tsmpiexec [OPTIONS] [-n N] PROGRAM [ARGS...] [: [-n N] PROGRAM [ARGS...]]...';

/** The segment an option must act on (segment options are never interpreted without one). */
function seg(t: Target, label: string): SegmentDraft {
  if (t.seg === undefined) throw new Error(`internal: ${label} interpreted without a segment`);
  return t.seg;
}

function addPolicy(current: EnvPolicy | undefined, next: EnvPolicy): EnvPolicy {
  if (next.kind === 'list' && current?.kind === 'list') return { kind: 'list', names: [...current.names, ...next.names] };
  return next;
}

function hostsOf(value: string, label: string): HostSpec[] {
  try {
    return parseHostList(value);
  } catch (e) {
    if (e instanceof TsmpiError) throw new TsmpiError(e.code, `${label}: ${e.message}`, { culprit: e.culprit || label, hint: e.hint, exitStatus: 2 });
    throw e;
  }
}

function envPair(values: readonly string[], label: string): [string, string] {
  return [checkEnvName(values[0] ?? '', label), values[1] ?? ''];
}

const LAUNCHERS = ['fork', 'ssh', 'slurm'] as const;
const TRANSPORTS = ['fd', 'tcp', 'unix'] as const;
const MPI_CHOICES = ['auto', 'openmpi', 'mpich', 'pmix', 'none'] as const;
const ISOLATE_MODES = ['auto', 'strict', 'off'] as const;
const TMP_CHOICES = ['private', 'host'] as const;

/** A command with arguments, split like a shell would (quotes respected, nothing expanded). */
function commandWords(v: string, label: string): string[] {
  let words: string[];
  try {
    words = splitShellWords(v);
  } catch (e) {
    if (e instanceof ShellWordsError) throw badValue(`${label} '${v}': ${e.message}`, label, 'quote the command like a shell would');
    throw e;
  }
  if (words.length === 0) throw badValue(`${label} needs a command, got '${v}'`, label, `e.g. ${label} 'ssh -p 2222'`);
  return words;
}

/** Another launcher's option that means nothing here: noted, and said in one line when the job starts. */
const noEffect: Interpret = (t, _v, label) => {
  t.job.noEffect = [...(t.job.noEffect ?? []), label];
};

/** The meaning of every option in the table. */
const INTERPRET: { [K in OptionName]: Interpret } = {
  n: (t, [v = ''], label) => {
    seg(t, label).np = parseWholeNumber(v, label, 1);
  },
  hosts: (t, [v = ''], label) => {
    const hosts = hostsOf(v, label);
    if (t.seg) t.seg.hosts = hosts;
    else t.job.hosts = hosts;
  },
  f: (t, [v = ''], label) => {
    t.job.hostfile = nonEmpty(v, label, 'a file name');
  },
  ppn: (t, [v = ''], label) => {
    t.job.ppn = parseWholeNumber(v, label, 1);
  },
  oversubscribe: (t) => {
    t.job.oversubscribe = true;
  },
  configfile: () => {
    // Read by parseArgs itself: it replaces the command line's segments.
  },
  launcher: (t, [v = ''], label) => {
    t.job.launcher = parseChoice(v, label, LAUNCHERS, { rsh: 'ssh' });
  },
  'launcher-exec': (t, [v = ''], label) => {
    t.job.launcherExec = commandWords(v, label);
  },
  'launch-timeout': (t, [v = ''], label) => {
    t.job.launchTimeoutSec = parseWholeNumber(v, label, 1);
  },
  'tree-width': (t, [v = ''], label) => {
    t.job.treeWidth = parseWholeNumber(v, label, 1);
  },
  'no-tree': (t) => {
    t.job.noTree = true;
  },
  'proxy-cmd': (t, [v = ''], label) => {
    t.job.proxyCmd = commandWords(v, label);
  },
  timeout: (t, [v = ''], label) => {
    t.job.timeoutSec = parseWholeNumber(v, label, 1);
  },
  grace: (t, [v = ''], label) => {
    t.job.graceSec = parseWholeNumber(v, label, 0);
  },
  genv: (t, values, label) => {
    t.job.genv.set.push(envPair(values, label));
  },
  genvlist: (t, [v = ''], label) => {
    t.job.genv.policy = addPolicy(t.job.genv.policy, { kind: 'list', names: parseNameList(v, label) });
  },
  genvall: (t) => {
    t.job.genv.policy = { kind: 'all' };
  },
  genvnone: (t) => {
    t.job.genv.policy = { kind: 'none' };
  },
  env: (t, values, label) => {
    seg(t, label).env.set.push(envPair(values, label));
  },
  envlist: (t, [v = ''], label) => {
    const s = seg(t, label);
    s.env.policy = addPolicy(s.env.policy, { kind: 'list', names: parseNameList(v, label) });
  },
  envall: (t, _v, label) => {
    seg(t, label).env.policy = { kind: 'all' };
  },
  envnone: (t, _v, label) => {
    seg(t, label).env.policy = { kind: 'none' };
  },
  wdir: (t, [v = ''], label) => {
    const dir = nonEmpty(v, label, 'a directory');
    if (t.seg) t.seg.wdir = dir;
    else t.job.wdir = dir;
  },
  'prepend-rank': (t) => {
    t.job.prependRank = true;
  },
  'prepend-pattern': (t, [v = ''], label) => {
    t.job.prependPattern = checkFilePattern(v, label);
  },
  'outfile-pattern': (t, [v = ''], label) => {
    t.job.outfilePattern = checkFilePattern(v, label);
  },
  'errfile-pattern': (t, [v = ''], label) => {
    t.job.errfilePattern = checkFilePattern(v, label);
  },
  stdin: (t, [v = ''], label) => {
    t.job.stdin = parseStdinTarget(v, label);
  },
  'pmi-transport': (t, [v = ''], label) => {
    t.job.pmiTransport = parseChoice(v, label, TRANSPORTS);
  },
  mpi: (t, [v = ''], label) => {
    t.job.mpi = parseChoice(v, label, MPI_CHOICES);
  },
  'pmi-port': (t) => {
    t.job.pmiTransport = 'tcp';
  },
  'bind-to': (t, [v = ''], label) => {
    t.job.bindTo = parseBindTo(v, label);
  },
  'map-by': (t, [v = ''], label) => {
    t.job.mapBy = parseMapBy(v, label);
  },
  usize: (t, [v = ''], label) => {
    const u = v.toUpperCase();
    t.job.usize = u === 'SYSTEM' ? 'system' : u === 'INFINITE' ? 'infinite' : parseWholeNumber(v, label, 1);
  },
  x: (t, [v = ''], label) => {
    const eq = v.indexOf('=');
    if (eq >= 0) {
      t.job.genv.set.push(envPair([v.slice(0, eq), v.slice(eq + 1)], label));
      return;
    }
    const name = checkEnvName(v, label);
    // every variable passes already unless -genvnone / -genvlist narrowed it: then NAME joins the list
    const p = t.job.genv.policy;
    if (p?.kind === 'none') t.job.genv.policy = { kind: 'list', names: [name] };
    else if (p?.kind === 'list') t.job.genv.policy = { kind: 'list', names: [...p.names, name] };
  },
  mca: (t, [name = '', value = ''], label) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw badValue(`${label} ${name}: not an Open MPI parameter name`, label, 'write --mca NAME VALUE, e.g. --mca btl self,vader,tcp');
    t.job.genv.set.push([`OMPI_MCA_${name}`, value]);
  },
  'allow-run-as-root': () => {},
  'print-all-exitcodes': (t) => {
    t.job.printAllExitcodes = true;
  },
  'disable-auto-cleanup': noEffect,
  'skip-launch-node': noEffect,
  'localhost': noEffect,
  'disable-hostname-propagation': noEffect,
  'rmk': noEffect,
  'enable-x': noEffect,
  'disable-x': noEffect,
  'demux': noEffect,
  'iface': noEffect,
  'profile': noEffect,
  'timestamp-output': (t) => {
    t.job.timestampOutput = true;
  },
  membind: (t, [v = ''], label) => {
    t.job.membind = parseMembind(v, label);
  },
  'gpus-per-proc': (t, [v = ''], label) => {
    t.job.gpusPerProc = parseWholeNumber(v, label, 1);
  },
  'report-bindings': (t) => {
    t.job.reportBindings = true;
  },
  tmp: (t, [v = ''], label) => {
    t.job.tmp = parseChoice(v, label, TMP_CHOICES);
  },
  isolate: (t, [v = ''], label) => {
    t.job.isolate = parseChoice(v, label, ISOLATE_MODES);
  },
  'kvs-max-keys': (t, [v = ''], label) => {
    t.job.kvsLimits = { ...(t.job.kvsLimits ?? DEFAULT_KVS_LIMITS), maxKeys: parseWholeNumber(v, label, 1) };
  },
  'kvs-max-bytes': (t, [v = ''], label) => {
    t.job.kvsLimits = { ...(t.job.kvsLimits ?? DEFAULT_KVS_LIMITS), maxBytes: parseSize(v, label) };
  },
  'mem-per-rank': (t, [v = ''], label) => {
    t.job.memPerRankBytes = parseSize(v, label);
  },
  'pids-per-rank': (t, [v = ''], label) => {
    t.job.pidsPerRank = parseWholeNumber(v, label, 1);
  },
  report: (t) => {
    t.job.report = true;
  },
  'report-json': (t, [v = ''], label) => {
    t.job.reportJson = nonEmpty(v, label, 'a file name');
  },
  'report-html': (t, [v = ''], label) => {
    t.job.reportHtml = nonEmpty(v, label, 'a file name');
  },
  timing: (t) => {
    t.job.timing = true;
  },
  'dry-run': (t) => {
    t.job.dryRun = true;
  },
  json: (t) => {
    t.job.json = true;
  },
  verbose: (t) => {
    t.job.verbose = true;
  },
  version: () => {
    // Answered before any interpretation.
  },
  help: () => {
    // Answered before any interpretation.
  },
};

/** Remembers what was given in one scope (the job, or one segment) to refuse duplicates and conflicts. */
class Scope {
  private readonly seen = new Map<string, string>();
  private readonly conflicts = new Map<string, string>();
  constructor(private readonly where: string) {}

  note(use: OptionUse): void {
    const { def, spelling } = use;
    const before = this.seen.get(def.name);
    if (before !== undefined && def.arity > 0 && !def.repeatable) {
      throw usageError(`${spelling} given twice${this.where}`, spelling, `give ${display(def)} once`);
    }
    const key = def.conflicts;
    const other = key === undefined ? undefined : this.conflicts.get(key);
    if (key !== undefined && other !== undefined && findOption(other)?.name !== def.name) {
      throw usageError(`${spelling} conflicts with ${other}${this.where}`, spelling, 'give only one of them');
    }
    this.seen.set(def.name, spelling);
    if (key !== undefined) this.conflicts.set(key, spelling);
  }

  has(name: string): boolean {
    return this.seen.has(name);
  }
}

function newJob(): JobRequest {
  return {
    segments: [],
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
  };
}

function interpret(use: OptionUse, target: Target, scope: Scope): void {
  scope.note(use);
  INTERPRET[use.def.name as OptionName](target, use.values, use.spelling);
}

/** Interprets raw segments into the job; `leading` marks the command line's first segment. */
function addSegments(job: JobRequest, jobScope: Scope, raws: readonly RawSegment[], leading: boolean): void {
  raws.forEach((raw, k) => {
    const draft: SegmentDraft = { args: raw.args, env: { set: [] } };
    if (raw.program !== undefined) draft.program = raw.program;
    const index = job.segments.length;
    const segScope = new Scope(` in program segment ${index + 1}`);
    for (const use of raw.options) {
      const jobLevel = use.def.scope === 'global' || (leading && k === 0 && use.def.jobDefaultBeforeProgram === true);
      if (jobLevel) interpret(use, { job, seg: undefined }, jobScope);
      else interpret(use, { job, seg: draft }, segScope);
    }
    if (draft.program === undefined) {
      throw usageError(
        raws.length > 1 || index > 0 ? `missing program in segment ${index + 1}` : 'missing program',
        'PROGRAM',
        swallowedProgramHint(raw) ?? USAGE,
      );
    }
    const { program, ...rest } = draft;
    job.segments.push({ index, program, ...rest });
  });
}

/** Reads and interprets -configfile FILE; its errors name path:line. */
function addConfigFile(job: JobRequest, jobScope: Scope, path: string, readFile: (p: string) => string): void {
  let text: string;
  try {
    text = readFile(path);
  } catch (e) {
    const why = (e as { code?: unknown }).code ?? (e instanceof Error ? e.message : String(e));
    throw new TsmpiError(ERROR_CODES.CONFIGFILE, `cannot read config file ${path}: ${String(why)}`, {
      culprit: path,
      hint: 'check the path given to -configfile',
    });
  }
  for (const { line, text: lineText } of configLines(text)) {
    const where = `${path}:${line}`;
    try {
      let words: string[];
      try {
        words = splitShellWords(lineText, { comments: true });
      } catch (e) {
        if (e instanceof ShellWordsError) throw usageError(e.message, where, 'quote words like a shell would');
        throw e;
      }
      if (words.length === 0) continue;
      const raws = splitArgs(words);
      for (const raw of raws) {
        const nested = raw.options.find((u) => u.def.name === 'configfile' || u.def.name === 'help' || u.def.name === 'version');
        if (nested) throw usageError(`${nested.spelling} cannot be used inside a config file`, nested.spelling, 'give it on the command line');
      }
      addSegments(job, jobScope, raws, false);
    } catch (e) {
      if (e instanceof TsmpiError) {
        throw new TsmpiError(ERROR_CODES.CONFIGFILE, `${where}: ${e.message}`, { culprit: where, hint: e.hint, exitStatus: 2 });
      }
      throw e;
    }
  }
  if (job.segments.length === 0) {
    throw new TsmpiError(ERROR_CODES.CONFIGFILE, `config file ${path} names no program`, {
      culprit: path,
      hint: 'write one segment per line: -n N PROGRAM [ARGS]',
    });
  }
}

/** Help or version, if asked for anywhere among the options (before any value is checked). */
function helpOrVersion(raws: readonly RawSegment[]): CliResult | undefined {
  for (const raw of raws) {
    for (const use of raw.options) {
      if (use.def.name === 'version') return { kind: 'version' };
      if (use.def.name === 'help') {
        const topic = use.values[0];
        if (topic === undefined) return { kind: 'help' };
        if (findOption(topic) === undefined) throw unknownOptionError(topic);
        return { kind: 'help', topic };
      }
    }
  }
  return undefined;
}

/** Applies environment defaults (MPIEXEC_TIMEOUT, ...) for options not given; errors name the variable. */
function applyEnvDefaults(job: JobRequest, jobScope: Scope, env: Record<string, string | undefined>): void {
  for (const def of OPTIONS as readonly OptionDef[]) {
    if (def.env === undefined || jobScope.has(def.name)) continue;
    const v = env[def.env];
    if (v === undefined || v === '') continue;
    try {
      INTERPRET[def.name as OptionName]({ job, seg: undefined }, [v.trim()], def.env);
    } catch (e) {
      if (e instanceof TsmpiError) {
        throw new TsmpiError(e.code, e.message, { culprit: def.env, hint: `fix or unset ${def.env} (it sets ${display(def)})`, exitStatus: 2 });
      }
      throw e;
    }
  }
}

/**
 * The command line → what to do. Throws TsmpiError (code usage, bad-value, configfile) for bad input.
 * `env` supplies option defaults (MPIEXEC_TIMEOUT, TSMPIEXEC_GRACE); `readFile` reads -configfile.
 */
export function parseArgs(argv: string[], env: Record<string, string | undefined>, readFile: (p: string) => string): CliResult {
  const raws = splitArgs(argv);
  const early = helpOrVersion(raws);
  if (early !== undefined) return early;

  const job = newJob();
  const jobScope = new Scope('');
  const config = raws.flatMap((r) => r.options).find((u) => u.def.name === 'configfile');
  if (config !== undefined) {
    const first = raws[0] as RawSegment;
    if (raws.length > 1 || first.program !== undefined) {
      throw usageError(
        `${config.spelling} replaces the programs on the command line, but '${first.program ?? ':'}' follows`,
        first.program ?? ':',
        'put every program line in the config file',
      );
    }
    const misplaced = first.options.find((u) => u.def.scope === 'segment' && u.def.jobDefaultBeforeProgram !== true);
    if (misplaced) {
      throw usageError(`${misplaced.spelling} belongs to a program, which comes from ${config.spelling}`, misplaced.spelling, 'put it on the program\'s line in the config file');
    }
    for (const use of first.options) interpret(use, { job, seg: undefined }, jobScope);
    addConfigFile(job, jobScope, config.values[0] ?? '', readFile);
  } else {
    addSegments(job, jobScope, raws, true);
  }
  applyEnvDefaults(job, jobScope, env);
  if (job.json && !job.dryRun) throw usageError('--json only applies to --dry-run', '--json', 'add --dry-run to print the plan as JSON');
  return { kind: 'run', request: job };
}
