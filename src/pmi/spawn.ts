// MPI_Comm_spawn requests: the one typed shape both PMI-1 (`mcmd=spawn` segments) and PMI-2 (`cmd=spawn;...`)
// decode into, so whoever launches the children sees no wire details (pmi-wire.md §4.1, §5, §7).

/** One command of a spawn (one per MPI_Comm_spawn_multiple entry); its index is the children's appnum. */
export interface SpawnCommand {
  command: string;
  args: string[];
  /** Number of processes to start for this command (PMI-1 `nprocs`, PMI-2 `maxprocs`). */
  maxprocs: number;
  /** Info keys in order (hydra honours `path`, `wdir`, `host`/`hosts`, `hostfile`). */
  info: Array<[string, string]>;
}

export interface SpawnRequest {
  /** The group and rank that asked. */
  parentKvsname: string;
  parentRank: number;
  commands: SpawnCommand[];
  /** Key/value pairs to store in the children's KVS before they start (PARENT_ROOT_PORT_NAME). */
  preput: Array<[string, string]>;
  /** Which wire the request came in on (the children may use either). */
  protocol: 1 | 2;
}

export type SpawnDecode = { ok: true; commands: SpawnCommand[]; preput: Array<[string, string]> } | { ok: false; error: string };

/** Largest process count we accept in one command: far beyond any real machine, small enough to be safe. */
const MAX_PROCS = 1 << 20;

function count(v: string | undefined, what: string, max: number): number | string {
  if (v === undefined) return `missing ${what}`;
  if (!/^\d+$/.test(v)) return `bad ${what} ${JSON.stringify(v)}`;
  const n = Number(v);
  if (n > max) return `${what} ${n} too large`;
  return n;
}

/** Key/value list `<k><i>`/`<v><i>` for i in [0, n), taken from a first-wins map. */
function indexedPairs(m: Map<string, string>, n: number, k: string, v: string): Array<[string, string]> | string {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < n; i++) {
    const key = m.get(`${k}${i}`);
    if (key === undefined) return `missing ${k}${i}`;
    out.push([key, m.get(`${v}${i}`) ?? '']);
  }
  return out;
}

/**
 * PMI-1: segments as gathered by SpawnAccumulator. Keys are looked up by name. Preputs are taken from the first
 * segment that has `preput_num` (4.0.2 repeats them in every segment, main sends them in the first only).
 */
export function decodeSpawnV1(segments: ReadonlyArray<Map<string, string>>): SpawnDecode {
  if (segments.length === 0) return { ok: false, error: 'empty spawn request' };
  const commands: SpawnCommand[] = [];
  let preput: Array<[string, string]> | undefined;
  for (const seg of segments) {
    const nprocs = count(seg.get('nprocs'), 'nprocs', MAX_PROCS);
    if (typeof nprocs === 'string') return { ok: false, error: nprocs };
    const command = seg.get('execname');
    if (command === undefined || command === '') return { ok: false, error: 'missing execname' };
    let argcnt: number;
    if (seg.has('argcnt')) {
      const c = count(seg.get('argcnt'), 'argcnt', 65536);
      if (typeof c === 'string') return { ok: false, error: c };
      argcnt = c;
    } else {
      argcnt = 0;
      while (seg.has(`arg${argcnt + 1}`)) argcnt++;
    }
    const args: string[] = [];
    for (let i = 1; i <= argcnt; i++) {
      const a = seg.get(`arg${i}`);
      if (a === undefined) return { ok: false, error: `missing arg${i}` };
      args.push(a);
    }
    const infoNum = count(seg.get('info_num') ?? '0', 'info_num', 65536);
    if (typeof infoNum === 'string') return { ok: false, error: infoNum };
    const info = indexedPairs(seg, infoNum, 'info_key_', 'info_val_');
    if (typeof info === 'string') return { ok: false, error: info };
    if (preput === undefined && seg.has('preput_num')) {
      const pn = count(seg.get('preput_num'), 'preput_num', 65536);
      if (typeof pn === 'string') return { ok: false, error: pn };
      const pp = indexedPairs(seg, pn, 'preput_key_', 'preput_val_');
      if (typeof pp === 'string') return { ok: false, error: pp };
      preput = pp;
    }
    commands.push({ command, args, maxprocs: nprocs, info });
  }
  return { ok: true, commands, preput: preput ?? [] };
}

/**
 * PMI-2: `ncmds;preputcount;ppkeyI;ppvalI;` then per command `subcmd;maxprocs;argc;argvI...;infokeycount;
 * infokeyI;infovalI...`. Keys repeat across commands, so this walks the ordered pairs: each `subcmd` opens a
 * command and the keys after it belong to it.
 */
export function decodeSpawnV2(pairs: ReadonlyArray<readonly [string, string]>): SpawnDecode {
  const head = new Map<string, string>();
  const perCmd: Array<Map<string, string>> = [];
  for (const [k, v] of pairs) {
    if (k === 'subcmd') perCmd.push(new Map([[k, v]]));
    const target = perCmd[perCmd.length - 1] ?? head;
    if (!target.has(k)) target.set(k, v);
  }
  const ncmds = count(head.get('ncmds'), 'ncmds', 65536);
  if (typeof ncmds === 'string') return { ok: false, error: ncmds };
  if (ncmds !== perCmd.length || ncmds === 0) {
    return { ok: false, error: `ncmds=${ncmds} but ${perCmd.length} subcmd entries` };
  }
  const pc = count(head.get('preputcount') ?? '0', 'preputcount', 65536);
  if (typeof pc === 'string') return { ok: false, error: pc };
  const preput = indexedPairs(head, pc, 'ppkey', 'ppval');
  if (typeof preput === 'string') return { ok: false, error: preput };
  const commands: SpawnCommand[] = [];
  for (const m of perCmd) {
    const command = m.get('subcmd') ?? '';
    if (command === '') return { ok: false, error: 'empty subcmd' };
    const maxprocs = count(m.get('maxprocs'), 'maxprocs', MAX_PROCS);
    if (typeof maxprocs === 'string') return { ok: false, error: maxprocs };
    const argc = count(m.get('argc') ?? '0', 'argc', 65536);
    if (typeof argc === 'string') return { ok: false, error: argc };
    const args: string[] = [];
    for (let i = 0; i < argc; i++) {
      const a = m.get(`argv${i}`);
      if (a === undefined) return { ok: false, error: `missing argv${i}` };
      args.push(a);
    }
    const ic = count(m.get('infokeycount') ?? '0', 'infokeycount', 65536);
    if (typeof ic === 'string') return { ok: false, error: ic };
    const info = indexedPairs(m, ic, 'infokey', 'infoval');
    if (typeof info === 'string') return { ok: false, error: info };
    commands.push({ command, args, maxprocs, info });
  }
  return { ok: true, commands, preput };
}
