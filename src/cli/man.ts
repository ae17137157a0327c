// man/tsmpiexec.1, generated from the option table, the exit-status table and the error codes, so the
// manual cannot drift from the parser. gen-man.ts writes it; a test compares it with the committed file.
import { ERROR_CODES } from '../util/errors.js';
import { EXIT } from '../run/exit-status.js';
import { allSpellings, displaySpellings, GROUPS, OPTIONS, valueSynopsis, type OptionDef } from './options.js';
import { EXAMPLES } from './examples.js';

/** What each stable error code means (ERRORS). A code without an entry is caught by a unit test. */
export const ERROR_TEXT: Readonly<Record<string, string>> = {
  usage: 'The command line is malformed: an unknown option, a missing value or program, a misplaced colon.',
  'bad-value': 'An option or environment variable has a value of the wrong form (a number that is not a plain positive integer, an unknown launcher, a bad host entry).',
  hostfile: 'A host file cannot be read or has a line that is not a host entry; the message names path:line.',
  configfile: 'A -configfile cannot be read or one of its lines is wrong; the message names path:line.',
  program: 'The program cannot be found or is not executable on a host.',
  launch: 'A launcher (ssh, srun) or a proxy could not be started or stopped answering.',
  allocation: 'The batch allocation cannot be read or cannot hold the job.',
  isolation: 'A requested isolation feature is not available and no fallback is allowed.',
  io: 'Standard input or output, or an output file, failed.',
};

/** What each fixed exit status means (EXIT STATUS). A status without an entry is caught by a unit test. */
export const EXIT_TEXT: Readonly<Record<string, string>> = {
  OK: 'Every rank exited with status 0.',
  USAGE: 'The command line, a host file or a config file is wrong; nothing was started.',
  NO_FINALIZE: 'A rank ended without calling PMI finalize after it had initialized PMI.',
  NO_PMI: 'In a job of several ranks, a rank of an MPI program ended without ever contacting the PMI server: it ran as a one-rank job of its own (see --mpi).',
  TIMEOUT: 'The -timeout (or MPIEXEC_TIMEOUT) limit was reached.',
  LAUNCH_FAILED: 'A proxy or a rank could not be started (missing program, unreachable host, launcher failure), or a proxy was lost mid-job (host down, proxy killed, connection cut).',
  PMI: 'A rank broke the PMI protocol (its connection was closed), or put more into the job\'s PMI key-value space than --kvs-max-keys or --kvs-max-bytes allow; one line names the rank, and the other ranks are terminated.',
  OUTPUT_FAILED: 'Rank output could not be written (for example an output file on a full file system).',
  INTERNAL: 'An internal error: a bug in tsmpiexec, reported with its stack trace.',
};

const SPELLINGS = new Set(allSpellings());

/** Escapes plain text for roff, writing option spellings in bold with real minus signs. */
export function roffText(text: string): string {
  let s = text.replace(/\\/g, '\\e');
  s = s.replace(/(^|[\s(,'"])(-{1,2})([A-Za-z][A-Za-z0-9-]*)/g, (m, pre: string, dashes: string, word: string) => {
    const minus = dashes.replace(/-/g, '\\-');
    return SPELLINGS.has(word) ? `${pre}\\fB${minus}${word}\\fR` : `${pre}${minus}${word}`;
  });
  s = s.replace(/(^|\s)--(?=[\s.,;)]|$)/g, '$1\\-\\-');
  return /^[.']/.test(s) ? `\\&${s}` : s;
}

/** Plain words for a macro line; no option formatting. */
function roffWords(text: string): string {
  const s = text.replace(/\\/g, '\\e').replace(/-/g, '\\-');
  return /^[.']/.test(s) ? `\\&${s}` : s;
}

function paragraphs(text: string): string[] {
  return text.split(/\n\s*\n/).map((p) => roffText(p.replace(/\s+/g, ' ').trim()));
}

function optionHead(def: OptionDef): string {
  const names = displaySpellings(def).map((s) => `\\fB${s.replace(/-/g, '\\-')}\\fR`).join(', ');
  const v = valueSynopsis(def);
  if (v === '') return names;
  const italic = v.replace(/[A-Z]+/g, (w) => `\\fI${w}\\fR`);
  return `${names} ${italic}`;
}

function optionFacts(def: OptionDef): string {
  const facts: string[] = [];
  if (def.scope === 'segment') facts.push(def.jobDefaultBeforeProgram ? 'Per segment; before the first program, for all segments.' : 'Per segment.');
  if (def.choices !== undefined && def.valueKind === 'choice') facts.push(`Values: ${def.choices.join(', ')}.`);
  if (def.default !== undefined) facts.push(`Default: ${def.default}.`);
  if (def.env !== undefined) facts.push(`Environment: ${def.env}.`);
  if (def.origin === 'tsmpiexec') facts.push('A tsmpiexec extension.');
  return facts.join(' ');
}

function optionsSection(): string[] {
  const out: string[] = ['.SH OPTIONS'];
  out.push(
    roffText(
      'Every option may be written with one or two dashes, and a value may follow an equals sign: -np 4, --np 4, -np=4 and --np=4 are the same. Options not marked "Per segment" apply to the whole job wherever they appear. An option that takes a value may be given once per job or segment, except where its text says that values add up.',
    ),
  );
  for (const g of GROUPS) {
    const members = OPTIONS.filter((o) => o.group === g.id);
    if (members.length === 0) continue;
    out.push(`.SS ${roffWords(g.title)}`);
    for (const def of members) {
      out.push('.TP', optionHead(def));
      paragraphs(def.man).forEach((p, k) => out.push(...(k === 0 ? [p] : ['.IP', p])));
      const facts = optionFacts(def);
      if (facts !== '') out.push('.IP', roffText(facts));
    }
  }
  return out;
}

function tagged(tag: string, text: string): string[] {
  return ['.TP', tag, roffText(text)];
}

function exitSection(): string[] {
  const out = ['.SH "EXIT STATUS"', roffText('The first cause recorded decides the status; later failures do not change it. A rank that exits with a non-zero code before it called MPI_Finalize is such a cause, and the other ranks are terminated. A rank that exits non-zero after MPI_Finalize ends nobody else; when nothing else failed, the status is the highest of those codes, whatever order the ranks ended in (ranks exiting 0, 1, 2 and 3 after MPI_Finalize give 3, as Hydra does).')];
  const fixed = Object.entries(EXIT) as Array<[string, number]>;
  const ok = fixed.find(([k]) => k === 'OK');
  if (ok) out.push(...tagged(`\\fB${ok[1]}\\fR`, EXIT_TEXT.OK ?? 'OK'));
  out.push(
    ...tagged('\\fIcode\\fR', 'The exit status of the first rank that failed (its low 8 bits).'),
    ...tagged('\\fB128\\fR+\\fIN\\fR', 'The first failed rank was killed by signal N, or tsmpiexec itself was stopped by signal N (after stopping the ranks).'),
    ...tagged('\\fIabort code\\fR', 'A rank called MPI_Abort (PMI abort) with this error code (its low 8 bits); all ranks are stopped.'),
  );
  for (const [key, value] of fixed.filter(([k]) => k !== 'OK').sort((a, b) => a[1] - b[1])) {
    out.push(...tagged(`\\fB${value}\\fR`, EXIT_TEXT[key] ?? key));
  }
  return out;
}

function errorsSection(): string[] {
  const out = [
    '.SH ERRORS',
    roffText(
      'An expected failure prints one line, "tsmpiexec: MESSAGE (CULPRIT) [CODE]", and often a "hint:" line, without a stack trace. CODE is one of these stable names:',
    ),
  ];
  for (const code of Object.values(ERROR_CODES)) out.push(...tagged(`\\fB${roffWords(code)}\\fR`, ERROR_TEXT[code] ?? code));
  out.push(
    '.PP',
    roffText('Anything else is a bug in tsmpiexec: it prints the stack trace, asks for a report and exits with status 70.'),
  );
  return out;
}

function environmentSection(): string[] {
  const out = ['.SH ENVIRONMENT'];
  for (const def of OPTIONS.filter((o) => o.env !== undefined)) {
    const extra = def.name === 'timeout' ? ' An empty value means no timeout.' : '';
    out.push(...tagged(`\\fB${roffWords(def.env ?? '')}\\fR`, `The default for ${displaySpellings(def).join(', ')} when it is not given; a malformed value is an error naming the variable.${extra}`));
  }
  out.push(
    ...tagged(
      '\\fBTSMPIEXEC_NATIVE\\fR',
      'Set to 0 to not use the optional native helper (dist/native/tsmpiexec-helper, built by make build when a C compiler is present): isolation then joins cgroups and the private /tmp through sh, nsenter, setpriv, unshare and mount, as it does where the helper was not built. The jobs are the same, their start is slower, and a pipe that the output of tsmpiexec goes into keeps its size (the helper grows it to 1 MiB once it fills, which speeds up output into | tee and the like).',
    ),
    ...tagged(
      '\\fBTSMPIEXEC_PMI_LIBRARY\\fR',
      'The PMI client library that Open MPI ranks load (see --mpi), instead of dist/native/libtsmpiexec-pmi.so next to the launcher. Empty: there is none, and a job of several Open MPI ranks stops before it starts, saying so.',
    ),
    ...tagged(
      '\\fBTSMPIEXEC_HEAD_START\\fR',
      'Set to 0 to not move tsmpiexec into the cgroup it is already in as its first step. That move changes nothing; it only starts the kernel\'s wait for the first cgroup migration (an RCU grace period) while tsmpiexec loads, instead of in front of the first rank. It writes only a cgroup.procs file that lists tsmpiexec\'s own process.',
    ),
  );
  out.push(
    '.PP',
    roffText(
      'Ranks receive the PMI variables their MPI library reads: PMI_FD, PMI_RANK and PMI_SIZE with --pmi-transport fd; PMI_PORT and PMI_ID with --pmi-transport tcp or unix; MPI_LOCALRANKID and MPI_LOCALNRANKS. Open MPI ranks also receive FLUX_JOB_ID (a number drawn per job) and FLUX_PMI_LIBRARY_PATH.',
    ),
  );
  return out;
}

function filesSection(): string[] {
  return [
    '.SH FILES',
    ...tagged(
      '\\fIhost file\\fR (\\fB\\-f\\fR)',
      'One host per line: NAME, NAME:SLOTS, or NAME slots=SLOTS (max_slots=M is accepted and ignored). # starts a comment, also after an entry; blank lines are ignored. A host named twice is one host whose slot counts add up; a line that is none of these forms is an error naming path:line.',
    ),
    ...tagged(
      '\\fIconfig file\\fR (\\fB\\-configfile\\fR)',
      'One program segment per line: options, program and arguments, split into words like a shell does without expanding anything. A backslash at the end of a line continues it; # starts a comment.',
    ),
  ];
}

function securitySection(): string[] {
  return [
    '.SH SECURITY',
    roffText(
      'By default ranks reach the PMI server through an inherited socketpair (PMI_FD): there is no listening socket another user could connect to. With --pmi-transport tcp the socket listens on loopback only and peers owned by another user are refused; with --pmi-transport unix it lives in a directory only the owner can enter. Each PMI id may connect once.',
    ),
    '.PP',
    roffText(
      'Secrets (such as the key proxies use to connect back when the launcher gives no private channel) are passed in the environment, never on a command line, where other users could read them. --verbose prints variable names, never their values.',
    ),
  ];
}

function examplesSection(): string[] {
  const out = ['.SH EXAMPLES'];
  for (const ex of EXAMPLES) {
    out.push('.PP', roffText(ex.title), '.PP', '.RS 4', '.nf');
    for (const l of ex.lines) out.push(roffWords(l));
    out.push('.fi', '.RE');
  }
  return out;
}

export function renderManPage(version: string, date: string): string {
  const synopsis = [
    '.SH SYNOPSIS',
    '.B tsmpiexec',
    '[\\fIoptions\\fR] \\fIprogram\\fR [\\fIargs\\fR ...] [\\fB:\\fR [\\fIoptions\\fR] \\fIprogram\\fR [\\fIargs\\fR ...]] ...',
    '.br',
    '.B tsmpiexec',
    '[\\fIoptions\\fR] \\fB\\-configfile\\fR \\fIfile\\fR',
    '.br',
    '.B tsmpiexec',
    '\\fB\\-\\-help\\fR [\\fIoption\\fR]',
    '.br',
    '.B tsmpiexec pmi-check',
    '[\\fB\\-\\-keys\\fR \\fIN\\fR] [\\fB\\-\\-json\\fR]',
  ];
  const description = [
    '.SH DESCRIPTION',
    roffText(
      'tsmpiexec starts the ranks of an MPI program on one or more hosts, serves them the PMI protocol MPICH and Slurm\'s PMI clients speak, relays their output, and makes sure nothing is left behind when the job ends. It reads the command line of MPICH\'s Hydra mpiexec.',
    ),
    '.PP',
    roffText(
      'The program is the first word that is neither an option nor an option\'s value; every word after it is passed to the program unchanged, even words that look like options. A lone colon (:) ends one program segment and starts the next (MPMD); the segments share one MPI_COMM_WORLD, numbered in order. A program whose name starts with a dash can be given after --.',
    ),
    '.PP',
    roffText(
      'tsmpiexec pmi-check, run as the program of a job (tsmpiexec -n 8 tsmpiexec pmi-check) or under any other launcher, probes its PMI server the way flux pmi does: it connects through PMI_FD or PMI_PORT, initializes, passes a barrier, exchanges N keys (default 4) all-to-all and checks every value, and prints one line of timings per rank; it exits 1 on any failure. Handy when an MPI start-up is broken.',
    ),
    '.PP',
    roffText(
      'Options marked "Per segment" belong to the segment whose program follows them; the others apply to the whole job wherever they appear. The hosts come from -hosts or -f; without them, from the batch system\'s allocation when tsmpiexec recognises one, else the local host.',
    ),
  ];
  const lines = [
    `.\\" Generated by src/cli/gen-man.ts from src/cli/options.ts; do not edit.`,
    `.TH TSMPIEXEC 1 "${date}" "tsmpiexec ${version}" "User Commands"`,
    '.nh',
    '.SH NAME',
    'tsmpiexec \\- run MPI programs on one or more hosts, leaving nothing behind',
    ...synopsis,
    ...description,
    ...optionsSection(),
    ...environmentSection(),
    ...exitSection(),
    ...errorsSection(),
    ...filesSection(),
    ...securitySection(),
    ...examplesSection(),
    '.SH "SEE ALSO"',
    '.BR mpiexec.hydra (1),',
    '.BR srun (1),',
    '.BR ssh (1)',
  ];
  return `${lines.join('\n')}\n`;
}
