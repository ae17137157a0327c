// THE option table: every command-line option is defined once here; the parser, --help, --help OPTION,
// the man page and the shell completions are all generated from it (architecture principle 7).
// Keep this module free of imports with weight: parseArgs imports it on every start-up.

export type OptionGroup = 'placement' | 'launch' | 'environment' | 'io' | 'pmi' | 'isolation' | 'reporting' | 'compat' | 'general';

/** Group order and titles, shared by --help and the man page. */
export const GROUPS: ReadonlyArray<{ id: OptionGroup; title: string }> = [
  { id: 'placement', title: 'Placement' },
  { id: 'launch', title: 'Launch' },
  { id: 'environment', title: 'Environment' },
  { id: 'io', title: 'I/O' },
  { id: 'pmi', title: 'PMI' },
  { id: 'isolation', title: 'Isolation and limits' },
  { id: 'reporting', title: 'Reporting' },
  { id: 'compat', title: 'Carried over from other launchers\' job scripts' },
  { id: 'general', title: 'General' },
];

/**
 * How a value is checked before it is interpreted. `text` values are taken as they are, even when they
 * start with '-' (`-genv CFLAGS -O2`); the others refuse a token that is itself an option, so
 * `-n -genv A B` reports "-n needs a value" instead of "bad number -genv".
 */
export type ValueKind = 'int' | 'choice' | 'path' | 'list' | 'text';

export interface OptionDef {
  /** Primary spelling without dashes. */
  name: string;
  /** Other spellings without dashes. Every spelling is accepted with one or two dashes. */
  aliases: readonly string[];
  group: OptionGroup;
  /** 'segment' options belong to one MPMD segment (the one whose program follows them). */
  scope: 'global' | 'segment';
  /** A segment option that, before the first program on the command line, sets the job-wide default. */
  jobDefaultBeforeProgram?: boolean;
  /** Values taken: 0 (a flag), 1, or 2 (`-genv NAME VALUE`, which also accepts `NAME=VALUE`). */
  arity: 0 | 1 | 2;
  /** Only for --help: the value (a topic) may be left out. */
  optionalValue?: boolean;
  valueName?: string;
  valueKind?: ValueKind;
  choices?: readonly string[];
  /** Environment variable that supplies the value when the option is not given. */
  env?: string;
  /** The default, as shown in --help and the man page (the parser's defaults are tested against it). */
  default?: string;
  /** May be given more than once in one scope (values accumulate). Flags may always repeat. */
  repeatable?: boolean;
  /** Options with the same key contradict each other when both are given in one scope. */
  conflicts?: string;
  /** Where the option comes from: the MPI standard, MPICH Hydra, or tsmpiexec itself. */
  origin: 'mpi' | 'hydra' | 'openmpi' | 'tsmpiexec';
  /** How multi-letter spellings are shown: `-ppn` (Hydra style) or `--grace` (GNU style). */
  dashes: 1 | 2;
  /** One line for --help (short: the help column is about 43 characters wide). */
  help: string;
  /** Plain text for the man page and --help OPTION; paragraphs separated by a blank line. */
  man: string;
}

/** The man page's date: fixed so the generated page is reproducible. Bump it when the table changes. */
export const MAN_DATE = '2026-12-03';

const TABLE = [
  // ── placement ─────────────────────────────────────────────────────────────────────────────────
  {
    name: 'n', aliases: ['np'], group: 'placement', scope: 'segment', arity: 1, valueName: 'N', valueKind: 'int',
    origin: 'mpi', dashes: 1,
    help: 'ranks to start for this program',
    man: 'Start N ranks of the program that follows. Without it, a segment fills the available slots (one rank when no host has a slot count). N is a plain positive decimal integer.',
  },
  {
    name: 'hosts', aliases: ['host'], group: 'placement', scope: 'segment', jobDefaultBeforeProgram: true,
    arity: 1, valueName: 'LIST', valueKind: 'list', conflicts: 'hostsource', origin: 'hydra', dashes: 1,
    help: 'hosts to run on: a,b:4,c',
    man: 'Comma-separated host names, each optionally followed by :SLOTS (node07:4). A name given twice is one host whose slot counts add up (a host without a count counts as one slot). Before the first program it is the job\'s host list; after a colon it applies to that segment only, as in Hydra.',
  },
  {
    name: 'f', aliases: ['hostfile', 'machinefile'], group: 'placement', scope: 'global', arity: 1, valueName: 'FILE',
    valueKind: 'path', conflicts: 'hostsource', origin: 'hydra', dashes: 1,
    help: 'read the host list from FILE',
    man: 'Read the host list from FILE: one host per line as NAME, NAME:SLOTS or NAME slots=SLOTS (Open MPI\'s form; max_slots=M is accepted and ignored). A # starts a comment; blank lines are ignored. See FILES.',
  },
  {
    name: 'usize', aliases: [], group: 'placement', scope: 'global', arity: 1, valueName: 'SIZE', valueKind: 'text',
    origin: 'hydra', dashes: 1,
    help: 'universe size: SYSTEM, INFINITE or N',
    man: 'The universe size the ranks are told (MPI_UNIVERSE_SIZE: how many processes the job may grow to with MPI_Comm_spawn). SYSTEM, the default, is the slots of the host list or batch allocation (a host without a count has one slot; this host alone has one slot per usable CPU), and never less than the job\'s ranks. INFINITE says there is no limit; N is a number of processes.',
  },
  {
    name: 'ppn', aliases: ['npernode'], group: 'placement', scope: 'global', arity: 1, valueName: 'N', valueKind: 'int',
    origin: 'hydra', dashes: 1,
    help: 'ranks per host',
    man: 'Place N consecutive ranks on each host before moving to the next one, whatever slot counts the host list gives.',
  },
  {
    name: 'oversubscribe', aliases: [], group: 'placement', scope: 'global', arity: 0, origin: 'tsmpiexec', dashes: 2,
    help: 'allow more ranks than allocated slots',
    man: 'Inside a batch allocation (Slurm, PBS, LSF, Grid Engine, HTCondor), allow more ranks than the allocation has slots; they wrap round-robin over its hosts. Without it, asking for more ranks than slots is an error (code allocation) that names the slot count and the variable it came from. Host lists given with -hosts or -f are not checked: there ranks wrap as in Hydra.',
  },
  {
    name: 'configfile', aliases: [], group: 'placement', scope: 'global', arity: 1, valueName: 'FILE', valueKind: 'path',
    origin: 'mpi', dashes: 1,
    help: 'read the MPMD segments from FILE',
    man: 'Read the program segments from FILE instead of the command line: each line holds one segment\'s options, program and arguments, as it would be written between colons. Words are split like a shell does (quotes are respected, nothing is expanded); a backslash at the end of a line continues it; # starts a comment. Global options may appear on the command line or in the file; no program may follow -configfile on the command line.',
  },
  {
    name: 'bind-to', aliases: ['bind'], group: 'placement', scope: 'global', arity: 1, valueName: 'WHAT', valueKind: 'text',
    origin: 'hydra', dashes: 1,
    help: 'bind ranks: core, none, socket, user:0,1...',
    man: 'Confine each rank to CPUs of its host, in the rank\'s own process before it starts, so its threads and children stay there. WHAT is none, hwthread, core, socket or numa, optionally with a count (core:2 gives each rank two cores), or user:LIST with one CPU number per local rank (user:1,0; user:0+1,2+3 gives a rank several). CPUs outside the launcher\'s own affinity (taskset, a batch system\'s binding, a cpuset) are never used. Without -bind-to each rank gets a core of its own when the host\'s ranks fit its usable cores, and nothing is bound when they do not (oversubscription). Needs the native helper or taskset; without either the job runs unbound and says so in one line.',
  },
  {
    name: 'map-by', aliases: [], group: 'placement', scope: 'global', arity: 1, valueName: 'OBJECT', valueKind: 'text',
    origin: 'hydra', dashes: 1,
    help: 'CPU order: core, socket, numa, ppr:N:OBJ',
    man: 'The order in which a host\'s CPUs are handed to its local ranks when binding: core and hwthread fill one core (or hardware thread) after the other; socket and numa go round-robin over the packages or NUMA nodes, so consecutive ranks land on different ones; ppr:N:OBJECT puts N consecutive local ranks on each OBJECT before moving on. It does not change which host a rank runs on (see -hosts and -ppn).',
  },
  {
    name: 'membind', aliases: [], group: 'placement', scope: 'global', arity: 1, valueName: 'POLICY', valueKind: 'text',
    origin: 'hydra', dashes: 1,
    help: 'memory policy: bind[:NODES], interleave',
    man: 'Where each rank\'s memory comes from, set in the rank\'s own process before it starts (it holds for its threads and children). bind takes pages only from the NUMA nodes of the rank\'s own CPUs (all usable CPUs for a rank that is not bound); bind:NODES from the listed nodes (0,1 or 0-3); interleave and interleave:NODES spread pages round-robin over the same nodes. none and firsttouch leave the kernel\'s default, which takes a page from the node of the CPU that first touches it. A listed node the launcher may not use stops that host\'s ranks with one line. Needs the native helper or numactl; without either the job runs with the default policy and says so in one line.',
  },
  {
    name: 'gpus-per-proc', aliases: ['gpus-per-rank'], group: 'placement', scope: 'global', arity: 1, valueName: 'N', valueKind: 'int',
    origin: 'hydra', dashes: 1,
    help: 'give each rank its own N GPUs',
    man: 'Give each rank of a host its own N GPUs, in local-rank order, through CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES or ZE_AFFINITY_MASK. Where tsmpiexec itself runs with one of those set (a batch system\'s GPU allocation), the ranks get devices out of that list only, through the same variable; otherwise the NVIDIA devices of the host (/dev/nvidiaN) are handed out through CUDA_VISIBLE_DEVICES. Too few devices for the ranks of a host: one line and exit 2, nothing started.',
  },
  {
    name: 'report-bindings', aliases: [], group: 'placement', scope: 'global', arity: 0, origin: 'tsmpiexec', dashes: 2,
    help: 'print each rank\'s CPUs, memory, GPUs',
    man: 'Print one line per rank on stderr with its host, rank number and the CPUs it is bound to (or "not bound"), its memory policy when -membind set one (memory bind:0) and its devices when -gpus-per-proc gave it some (GPUs 0,1). With --dry-run --json the binding of each rank on this host is part of the plan (cpus, and mems with -membind); --report-json carries each rank\'s binding too.',
  },
  // ── launch ────────────────────────────────────────────────────────────────────────────────────
  {
    name: 'launcher', aliases: [], group: 'launch', scope: 'global', arity: 1, valueName: 'NAME', valueKind: 'choice',
    choices: ['fork', 'ssh', 'slurm'], origin: 'hydra', dashes: 1,
    help: 'how to start remote proxies: fork|ssh|slurm',
    man: 'How the per-host proxies are started: fork (this host only), ssh, or slurm (srun, inside an allocation). rsh is accepted as another name for ssh. Without it, tsmpiexec uses slurm when the host list came from a Slurm allocation (SLURM_JOB_ID and SLURM_JOB_NODELIST set, no -hosts or -f), else fork when every host is this host and ssh otherwise. The slurm launcher starts each remote proxy with srun as a one-task job step on its node, sharing the allocation\'s CPUs, so Slurm accounts for it and kills it with the job.',
  },
  {
    name: 'launcher-exec', aliases: [], group: 'launch', scope: 'global', arity: 1, valueName: 'CMD', valueKind: 'text',
    origin: 'hydra', dashes: 1,
    help: 'command to run instead of ssh or srun',
    man: 'Run CMD instead of the launcher\'s usual program (ssh or srun). CMD is split into words like a shell does: quotes are respected, nothing is expanded, so -launcher-exec \'ssh -p 2222\' works.',
  },
  {
    name: 'launch-timeout', aliases: [], group: 'launch', scope: 'global', arity: 1, valueName: 'SECONDS', valueKind: 'int',
    default: '60', origin: 'tsmpiexec', dashes: 2,
    help: 'give up on a silent proxy',
    man: 'Bound the launch: a proxy that has not answered SECONDS after its launcher (ssh) started is reported by host name, with the launcher\'s own last error line, and the whole job is torn down with the launch-failure status. Hydra waits forever here.',
  },
  {
    name: 'tree-width', aliases: [], group: 'launch', scope: 'global', arity: 1, valueName: 'K', valueKind: 'int',
    default: '32', origin: 'tsmpiexec', dashes: 2,
    help: 'ssh launch tree fan-out',
    man: 'With the ssh launcher, the controller starts at most K proxies itself; each of them starts up to K more from its own host, and so on, so a long host list does not serialize on one ssh client (the hosts must be able to ssh to each other). PMI barriers travel the same tree: each proxy gathers the entries of its subtree and sends one message up, and the result comes down once per link, so the controller sends each barrier to K proxies only. With at most K remote hosts the launch is flat.',
  },
  {
    name: 'no-tree', aliases: [], group: 'launch', scope: 'global', arity: 0, origin: 'tsmpiexec', dashes: 2,
    help: 'start every proxy from this host',
    man: 'Start every remote proxy from this host (a flat launch with bounded concurrency), whatever --tree-width says.',
  },
  {
    name: 'proxy-cmd', aliases: [], group: 'launch', scope: 'global', arity: 1, valueName: 'CMD', valueKind: 'text',
    origin: 'tsmpiexec', dashes: 2,
    help: 'command starting tsmpiexec on remote hosts',
    man: 'The command run on a remote host to start the proxy, split into words like -launcher-exec; tsmpiexec adds the word proxy. By default it is this very node binary and tsmpiexec script, by absolute path (a shared file system, as for Hydra\'s proxy), e.g. --proxy-cmd \'/opt/node/bin/node /opt/tsmpiexec/bin/tsmpiexec.js\'.',
  },
  {
    name: 'timeout', aliases: [], group: 'launch', scope: 'global', arity: 1, valueName: 'SECONDS', valueKind: 'int',
    env: 'MPIEXEC_TIMEOUT', origin: 'tsmpiexec', dashes: 1,
    help: 'end the job after SECONDS',
    man: 'End the whole job when it has run for SECONDS: ranks get SIGTERM, then SIGKILL after the grace period, and tsmpiexec exits with status 124. MPIEXEC_TIMEOUT gives the default, as in MPICH; an empty MPIEXEC_TIMEOUT means no timeout.',
  },
  {
    name: 'grace', aliases: [], group: 'launch', scope: 'global', arity: 1, valueName: 'SECONDS', valueKind: 'int',
    env: 'TSMPIEXEC_GRACE', default: '5', origin: 'tsmpiexec', dashes: 2,
    help: 'wait between SIGTERM and SIGKILL',
    man: 'When ranks are terminated (timeout, a failed rank, a signal to tsmpiexec), wait SECONDS after SIGTERM before sending SIGKILL. 0 sends SIGKILL at once. A second Ctrl-C does not wait.',
  },
  // ── environment ───────────────────────────────────────────────────────────────────────────────
  {
    name: 'genv', aliases: [], group: 'environment', scope: 'global', arity: 2, valueName: 'NAME VALUE', valueKind: 'text',
    repeatable: true, origin: 'hydra', dashes: 1,
    help: 'set NAME=VALUE for every rank',
    man: 'Set the variable NAME to VALUE for every rank, after the environment policy is applied; later settings win. NAME=VALUE as one word is accepted too, as in Hydra.',
  },
  {
    name: 'genvlist', aliases: [], group: 'environment', scope: 'global', arity: 1, valueName: 'NAMES', valueKind: 'list',
    repeatable: true, conflicts: 'envpolicy', origin: 'hydra', dashes: 1,
    help: 'pass only these variables: a,b,c',
    man: 'Pass only the listed variables (comma-separated) from tsmpiexec\'s environment to the ranks. Given twice, the lists add up.',
  },
  {
    name: 'genvall', aliases: [], group: 'environment', scope: 'global', arity: 0, conflicts: 'envpolicy',
    default: 'on', origin: 'hydra', dashes: 1,
    help: 'pass the whole environment (the default)',
    man: 'Pass tsmpiexec\'s whole environment to the ranks. This is the default.',
  },
  {
    name: 'genvnone', aliases: [], group: 'environment', scope: 'global', arity: 0, conflicts: 'envpolicy',
    origin: 'hydra', dashes: 1,
    help: 'pass no variables (only -genv settings)',
    man: 'Pass none of tsmpiexec\'s environment to the ranks; they get only what -genv and -env set, plus the variables MPI itself needs.',
  },
  {
    name: 'env', aliases: [], group: 'environment', scope: 'segment', arity: 2, valueName: 'NAME VALUE', valueKind: 'text',
    repeatable: true, origin: 'hydra', dashes: 1,
    help: 'set NAME=VALUE for this segment',
    man: 'Like -genv, for the ranks of this segment only; applied after -genv.',
  },
  {
    name: 'envlist', aliases: [], group: 'environment', scope: 'segment', arity: 1, valueName: 'NAMES', valueKind: 'list',
    repeatable: true, conflicts: 'envpolicy', origin: 'hydra', dashes: 1,
    help: 'pass only these variables to this segment',
    man: 'Like -genvlist, for the ranks of this segment only.',
  },
  {
    name: 'envall', aliases: [], group: 'environment', scope: 'segment', arity: 0, conflicts: 'envpolicy',
    origin: 'hydra', dashes: 1,
    help: 'pass the whole environment to this segment',
    man: 'Like -genvall, for the ranks of this segment only.',
  },
  {
    name: 'envnone', aliases: [], group: 'environment', scope: 'segment', arity: 0, conflicts: 'envpolicy',
    origin: 'hydra', dashes: 1,
    help: 'pass no variables to this segment',
    man: 'Like -genvnone, for the ranks of this segment only.',
  },
  {
    name: 'wdir', aliases: [], group: 'environment', scope: 'segment', jobDefaultBeforeProgram: true, arity: 1,
    valueName: 'DIR', valueKind: 'path', origin: 'mpi', dashes: 1,
    help: 'working directory of the ranks',
    man: 'Start the ranks in DIR. Before the first program it is the default for every segment; after a colon it applies to that segment. Without it, ranks start in tsmpiexec\'s working directory.',
  },
  // ── io ────────────────────────────────────────────────────────────────────────────────────────
  {
    name: 'prepend-rank', aliases: ['l', 'tag-output'], group: 'io', scope: 'global', arity: 0, origin: 'hydra', dashes: 1,
    help: 'prefix each output line with its rank',
    man: 'Prefix every line a rank writes to stdout or stderr with [RANK].',
  },
  {
    name: 'prepend-pattern', aliases: [], group: 'io', scope: 'global', arity: 1, valueName: 'PAT', valueKind: 'text',
    origin: 'hydra', dashes: 1,
    help: 'prefix each output line with PAT',
    man: 'Prefix every line a rank writes to stdout or stderr with PAT, where, as in Hydra, %r is the rank, %h the host, %g the process group (0 for the command line\'s ranks, k for the k-th MPI_Comm_spawn), %p the proxy (the host\'s index in the job) and %% a percent sign: -prepend-pattern \'[%r@%h] \'. It replaces the -l label.',
  },
  {
    name: 'outfile-pattern', aliases: [], group: 'io', scope: 'global', arity: 1, valueName: 'PAT', valueKind: 'text',
    origin: 'hydra', dashes: 1,
    help: 'write rank stdout to files named by PAT',
    man: 'Write each rank\'s stdout to the file PAT names, where %r is the rank, %h the host, %g the process group (0 for the command line\'s ranks, k for the k-th MPI_Comm_spawn, as in Hydra), %p the proxy and %% a percent sign.',
  },
  {
    name: 'errfile-pattern', aliases: [], group: 'io', scope: 'global', arity: 1, valueName: 'PAT', valueKind: 'text',
    origin: 'hydra', dashes: 1,
    help: 'write rank stderr to files named by PAT',
    man: 'Like -outfile-pattern, for stderr.',
  },
  {
    name: 'stdin', aliases: [], group: 'io', scope: 'global', arity: 1, valueName: 'WHERE', valueKind: 'choice',
    choices: ['0', 'all', 'none'], default: '0', origin: 'tsmpiexec', dashes: 2,
    help: 'stdin goes to RANK, all or none',
    man: 'Send tsmpiexec\'s stdin to one rank (a number below the job size), to all ranks, or to none. Ranks that do not get stdin read end-of-file at once.',
  },
  // ── pmi ───────────────────────────────────────────────────────────────────────────────────────
  {
    name: 'pmi-transport', aliases: [], group: 'pmi', scope: 'global', arity: 1, valueName: 'KIND', valueKind: 'choice',
    choices: ['fd', 'tcp', 'unix'], default: 'fd', conflicts: 'pmi', origin: 'tsmpiexec', dashes: 2,
    help: 'PMI transport: fd|tcp|unix',
    man: 'How ranks reach the PMI server. fd: an inherited socketpair named by PMI_FD, with no listening socket at all. tcp: PMI_PORT on a loopback socket whose peers are checked to belong to the same user. unix: a UNIX socket in a directory only the owner can enter.',
  },
  {
    name: 'mpi', aliases: [], group: 'pmi', scope: 'global', arity: 1, valueName: 'KIND', valueKind: 'choice',
    choices: ['auto', 'openmpi', 'mpich', 'pmix', 'none'], default: 'auto', origin: 'tsmpiexec', dashes: 2,
    help: 'openmpi|mpich|pmix|none',
    man: 'Which MPI the program uses, so its ranks can join one job. auto (the default) finds out from the program itself: the MPI library an ELF program links (libmpi.so.40 is Open MPI, libmpich.so.12 or libmpi.so.12 the MPICH family, Intel MPI and MVAPICH included), or for a Python program that uses mpi4py, the library mpi4py was built with. MPICH-family programs speak PMI themselves. Open MPI 4 programs join over PMIx where tsmpiexec\'s PMIx server was built (make build with libpmix-dev installed): each host runs one for the job, and the ranks get its PMIx variables, FLUX_JOB_ID and OMPI_MCA_pmix=ext3x. Without it they get FLUX_JOB_ID and FLUX_PMI_LIBRARY_PATH, with which Open MPI loads tsmpiexec\'s PMI library (built by make build when a C compiler is installed). pmix is Open MPI over PMIx and nothing else: the job stops before it starts when the PMIx server is missing. In a job of several ranks, a rank of an MPI program that ends without ever contacting the PMI server ran as a one-rank job of its own (a singleton): the job fails with one line saying so. none gives the ranks nothing and turns that check off.',
  },
  {
    name: 'kvs-max-keys', aliases: [], group: 'pmi', scope: 'global', arity: 1, valueName: 'N', valueKind: 'int',
    env: 'TSMPIEXEC_KVS_MAX_KEYS', default: '1048576', origin: 'tsmpiexec', dashes: 2,
    help: 'max keys in the PMI KVS',
    man: 'The job\'s PMI key-value space holds at most N keys, over all ranks, spawned groups and barriers (default 1048576, far more than MPI libraries put). A put beyond it gets an error reply; one line names the rank and the limit, and the job ends with status 76. The launcher\'s memory stays bounded whatever a program puts.',
  },
  {
    name: 'kvs-max-bytes', aliases: [], group: 'pmi', scope: 'global', arity: 1, valueName: 'SIZE', valueKind: 'text',
    env: 'TSMPIEXEC_KVS_MAX_BYTES', default: '64M', origin: 'tsmpiexec', dashes: 2,
    help: 'max bytes in the PMI KVS',
    man: 'The job\'s PMI key-value space holds at most SIZE bytes of keys and values (default 64M; K, M, G and T are binary suffixes). Over it, as over --kvs-max-keys: an error reply to the put, one line, status 76.',
  },
  {
    name: 'pmi-port', aliases: [], group: 'pmi', scope: 'global', arity: 0, conflicts: 'pmi', origin: 'hydra', dashes: 1,
    help: 'same as --pmi-transport tcp',
    man: 'Hydra\'s spelling of --pmi-transport tcp.',
  },
  // ── isolation and limits ──────────────────────────────────────────────────────────────────────
  {
    name: 'isolate', aliases: [], group: 'isolation', scope: 'global', arity: 1, valueName: 'MODE', valueKind: 'choice',
    choices: ['auto', 'strict', 'off'], default: 'auto', origin: 'tsmpiexec', dashes: 2,
    help: 'containment: auto|strict|off',
    man: 'Contain each host\'s ranks: a cgroup per rank under one per job (everything left in it is killed atomically at the end, daemons included) and a private /tmp and /dev/shm per job and host. auto uses the best mechanism the host offers and says in one line what it fell back to, and why; strict fails the job before anything starts when cgroups or the private /tmp are unavailable; off uses neither (process groups only).',
  },
  {
    name: 'tmp', aliases: [], group: 'isolation', scope: 'global', arity: 1, valueName: 'WHICH', valueKind: 'choice',
    choices: ['private', 'host'], default: 'private', origin: 'tsmpiexec', dashes: 2,
    help: 'ranks\' /tmp: private|host',
    man: 'private (the default): the ranks of each host share a /tmp and /dev/shm of their own, removed at the end; every file or directory of the host\'s /tmp that the command line names (the program, its arguments, the working directory) stays visible at the same path. When the ranks left files there, one line at the end says how many and how large they were. host: the ranks use the host\'s /tmp and /dev/shm, and what they leave there stays (cgroups and limits are unchanged).',
  },
  {
    name: 'mem-per-rank', aliases: [], group: 'isolation', scope: 'global', arity: 1, valueName: 'SIZE', valueKind: 'text',
    origin: 'tsmpiexec', dashes: 2,
    help: 'memory limit of each rank (e.g. 512M, 2G)',
    man: 'Limit each rank (with its children) to SIZE bytes of memory; K, M, G and T are binary suffixes. A rank killed for exceeding it is reported as such ("rank 3 on h2 exceeded its 100 MiB memory limit"), from the cgroup\'s own OOM counters. Needs a memory cgroup.',
  },
  {
    name: 'pids-per-rank', aliases: [], group: 'isolation', scope: 'global', arity: 1, valueName: 'N', valueKind: 'int',
    origin: 'tsmpiexec', dashes: 2,
    help: 'at most N processes/threads per rank',
    man: 'Limit each rank (with its children and threads) to N tasks: a fork storm stops there. Needs a pids cgroup.',
  },
  // ── reporting ─────────────────────────────────────────────────────────────────────────────────
  {
    name: 'report', aliases: [], group: 'reporting', scope: 'global', arity: 0, origin: 'tsmpiexec', dashes: 2,
    help: 'print CPU, memory and I/O per rank and host',
    man: 'At the end, print on stderr a table of what each rank and each host used: CPU user and system seconds, peak memory, block I/O read and written, and peak task count, from the job\'s cgroups. A figure the host cannot measure is shown as "unavailable", never as 0.',
  },
  {
    name: 'report-json', aliases: [], group: 'reporting', scope: 'global', arity: 1, valueName: 'FILE', valueKind: 'path',
    origin: 'tsmpiexec', dashes: 2,
    help: 'write the usage report as JSON to FILE',
    man: 'Write the usage report to FILE as JSON: an object with "version" (1), "ranks" (one object per rank with rank, host, exit_code, signal, cpu_user_s, cpu_sys_s, mem_peak_bytes, io_read_bytes, io_write_bytes, pids_peak, oom_killed, and with binding cpus, mems and gpus: the CPU list, the -membind policy such as bind:0 and the -gpus-per-proc devices, each null when there is none) and "hosts" (one object per host with host, cgroup, tmp, cpu_user_s, cpu_sys_s, mem_peak_bytes, io_read_bytes, io_write_bytes). Unmeasurable figures are null. The file is created mode 0600.',
  },
  {
    name: 'report-html', aliases: [], group: 'reporting', scope: 'global', arity: 1, valueName: 'FILE', valueKind: 'path',
    origin: 'tsmpiexec', dashes: 2,
    help: 'write a self-contained HTML report to FILE',
    man: 'Write a report of the job to FILE as one self-contained HTML page (inline CSS, SVG and script; nothing is loaded from anywhere else): a timeline of rank lifetimes with one bar per rank coloured by outcome, per-rank CPU and peak-memory charts, the host table, the command line and the exit status. The file is created mode 0600.',
  },
  {
    name: 'timing', aliases: [], group: 'reporting', scope: 'global', arity: 0, origin: 'tsmpiexec', dashes: 2,
    help: 'print the wall time of each launch phase',
    man: 'At the end, print on stderr the wall time of each phase of the launch: start-up (until the command line is read), parse, plan, ranks started (proxies up on every host and every rank spawned), the PMI init barrier (the first barrier, which for MPI programs ends MPI_Init\'s exchange), run (until the last rank ended) and teardown (leftovers killed, cgroups removed, output flushed). With --dry-run only the first three. With remote proxies, a last line gives the bytes the controller wrote to and read from their control channels.',
  },
  {
    name: 'dry-run', aliases: [], group: 'reporting', scope: 'global', arity: 0, origin: 'tsmpiexec', dashes: 2,
    help: 'print the placement plan, start nothing',
    man: 'Work out where every rank would run and print the plan (hosts and where they came from, ranks per host) without starting anything.',
  },
  {
    name: 'json', aliases: [], group: 'reporting', scope: 'global', arity: 0, origin: 'tsmpiexec', dashes: 2,
    help: 'with --dry-run: print the plan as JSON',
    man: 'With --dry-run, print the plan as JSON instead of text.',
  },
  {
    name: 'verbose', aliases: ['v'], group: 'reporting', scope: 'global', arity: 0, origin: 'hydra', dashes: 2,
    help: 'explain each launch step on stderr',
    man: 'Explain on stderr where the host list came from, which launcher runs and how ranks are started. Variable names are shown, never their values.',
  },
  // ── compat ────────────────────────────────────────────────────────────────────────────────────
  {
    name: 'x', aliases: [], group: 'compat', scope: 'global', arity: 1, valueName: 'NAME[=VALUE]', valueKind: 'text', repeatable: true,
    origin: 'openmpi', dashes: 1,
    help: 'pass NAME (set to VALUE) to the ranks',
    man: 'Open MPI\'s spelling: -x NAME=VALUE is -genv NAME VALUE; -x NAME passes the launcher\'s NAME to the ranks even under -genvnone or -genvlist (without those every variable is passed already).',
  },
  {
    name: 'mca', aliases: [], group: 'compat', scope: 'global', arity: 2, valueName: 'NAME VALUE', valueKind: 'text', repeatable: true,
    origin: 'openmpi', dashes: 2,
    help: 'an Open MPI parameter, as OMPI_MCA_NAME',
    man: 'Open MPI\'s spelling for one of its parameters: the ranks get OMPI_MCA_NAME=VALUE.',
  },
  {
    name: 'allow-run-as-root', aliases: [], group: 'compat', scope: 'global', arity: 0, origin: 'openmpi', dashes: 2,
    help: 'accepted: tsmpiexec runs jobs as root',
    man: 'Accepted without a word: tsmpiexec never refuses root, and the Open MPI ranks it starts do not check.',
  },
  {
    name: 'print-all-exitcodes', aliases: [], group: 'compat', scope: 'global', arity: 0, origin: 'hydra', dashes: 1,
    help: 'print every rank\'s exit status at the end',
    man: 'At the end, print one line per rank on stderr with its host and how it ended (exit code or signal), successful ranks included.',
  },
  {
    name: 'disable-auto-cleanup', aliases: [], group: 'compat', scope: 'global', arity: 0, origin: 'hydra', dashes: 1,
    help: 'accepted; the job is always cleaned up',
    man: 'Hydra leaves the other ranks running when one fails; tsmpiexec always ends and cleans up the whole job (its cgroups make that atomic). Accepted so job scripts run, with one line saying it has no effect.',
  },
  {
    name: 'skip-launch-node', aliases: [], group: 'compat', scope: 'global', arity: 0, origin: 'hydra', dashes: 1,
    help: 'accepted; has no effect here',
    man: 'Accepted so job scripts run, with one line saying it has no effect: leave the launch host out of -hosts or the host file instead.',
  },
  {
    name: 'localhost', aliases: [], group: 'compat', scope: 'global', arity: 1, valueName: 'NAME', valueKind: 'text', origin: 'hydra', dashes: 1,
    help: 'accepted; has no effect here',
    man: 'Hydra\'s name for the local host. tsmpiexec recognises this host by its names and addresses itself; accepted with one line saying it has no effect.',
  },
  {
    name: 'disable-hostname-propagation', aliases: [], group: 'compat', scope: 'global', arity: 0, origin: 'hydra', dashes: 1,
    help: 'accepted; has no effect here',
    man: 'Accepted with one line saying it has no effect: ranks find their host name themselves.',
  },
  {
    name: 'rmk', aliases: [], group: 'compat', scope: 'global', arity: 1, valueName: 'NAME', valueKind: 'text', origin: 'hydra', dashes: 1,
    help: 'accepted; allocations are found anyway',
    man: 'Hydra\'s resource manager choice. tsmpiexec reads the allocation of the batch system it runs in by itself; accepted with one line saying it has no effect.',
  },
  {
    name: 'enable-x', aliases: [], group: 'compat', scope: 'global', arity: 0, origin: 'hydra', dashes: 1,
    help: 'accepted; X forwarding is not offered',
    man: 'Accepted with one line saying it has no effect: X forwarding is not offered.',
  },
  {
    name: 'disable-x', aliases: [], group: 'compat', scope: 'global', arity: 0, origin: 'hydra', dashes: 1,
    help: 'accepted; X is never forwarded',
    man: 'Accepted with one line saying it has no effect: X is never forwarded anyway.',
  },
  {
    name: 'demux', aliases: [], group: 'compat', scope: 'global', arity: 1, valueName: 'ENGINE', valueKind: 'text', origin: 'hydra', dashes: 1,
    help: 'accepted; has no effect here',
    man: 'Hydra\'s choice of I/O engine (poll, select); accepted with one line saying it has no effect.',
  },
  {
    name: 'iface', aliases: [], group: 'compat', scope: 'global', arity: 1, valueName: 'NAME', valueKind: 'text', origin: 'hydra', dashes: 1,
    help: 'accepted; has no effect here',
    man: 'Hydra\'s network interface for its own connections. tsmpiexec talks to proxies over the launcher\'s channel (ssh, srun) and to ranks over local sockets, so it needs none; accepted with one line saying it has no effect. Choose the MPI\'s own interface through its variables (UCX_NET_DEVICES, OMPI_MCA_btl_tcp_if_include).',
  },
  {
    name: 'profile', aliases: [], group: 'compat', scope: 'global', arity: 0, origin: 'hydra', dashes: 1,
    help: 'accepted; see --timing',
    man: 'Accepted with one line saying it has no effect; --timing and --report give the launch phases and what each rank used.',
  },
  {
    name: 'timestamp-output', aliases: [], group: 'compat', scope: 'global', arity: 0, origin: 'openmpi', dashes: 2,
    help: 'start each output line with its time',
    man: 'Open MPI\'s spelling: every line a rank writes starts with the time tsmpiexec received it, in UTC, as [2026-12-03T14:10:07.123Z], before any -l or -prepend-pattern label.',
  },
  // ── general ───────────────────────────────────────────────────────────────────────────────────
  {
    name: 'version', aliases: ['info'], group: 'general', scope: 'global', arity: 0, origin: 'tsmpiexec', dashes: 2,
    help: 'print the version and exit',
    man: 'Print the version and exit.',
  },
  {
    name: 'help', aliases: ['h'], group: 'general', scope: 'global', arity: 1, optionalValue: true,
    valueName: 'OPTION', valueKind: 'text', origin: 'hydra', dashes: 2,
    help: 'print this help, or explain OPTION',
    man: 'Print a summary of all options and exit. With OPTION (written with or without dashes: --help genv, --help -genv), explain that option in full.',
  },
] as const satisfies readonly OptionDef[];

/** The table, in display order. */
export const OPTIONS: readonly OptionDef[] = TABLE;

/** The primary name of every option: parse.ts needs an interpretation for each (checked by the compiler). */
export type OptionName = (typeof TABLE)[number]['name'];

const BY_SPELLING: ReadonlyMap<string, OptionDef> = new Map(
  OPTIONS.flatMap((o) => [o.name, ...o.aliases].map((s): [string, OptionDef] => [s, o])),
);

/** Every spelling (name and aliases) without dashes. */
export function allSpellings(): string[] {
  return [...BY_SPELLING.keys()];
}

/** The option spelled `bare` (no leading dashes), if any. */
export function optionBySpelling(bare: string): OptionDef | undefined {
  return BY_SPELLING.get(bare);
}

/** `-np`, `--np`, `np` → the option; undefined if there is none. Accepts at most two dashes. */
export function findOption(word: string): OptionDef | undefined {
  const m = /^-{0,2}([^-=][^=]*)$/.exec(word);
  return m?.[1] === undefined ? undefined : BY_SPELLING.get(m[1]);
}

/** A spelling as shown to users: single letters and Hydra-style options take one dash, others two. */
export function dashed(def: OptionDef, spelling: string): string {
  return (spelling.length === 1 || def.dashes === 1 ? '-' : '--') + spelling;
}

/** The option's canonical display form (`-n`, `--grace`). */
export function display(def: OptionDef): string {
  return dashed(def, def.name);
}

/** All spellings in display order: single letters first, then the name, then the other aliases. */
export function displaySpellings(def: OptionDef): string[] {
  const all = [def.name, ...def.aliases];
  const short = all.filter((s) => s.length === 1);
  const long = all.filter((s) => s.length > 1);
  return [...short, ...long].map((s) => dashed(def, s));
}

/** The value part of a synopsis: `N`, `NAME VALUE`, `[OPTION]`, or '' for a flag. */
export function valueSynopsis(def: OptionDef): string {
  if (def.arity === 0 || def.valueName === undefined) return '';
  return def.optionalValue ? `[${def.valueName}]` : def.valueName;
}
