// The PMI-1 side of the PMI engine: answers one connection's `cmd=...` lines and gathers its `mcmd=spawn`
// blocks (docs/pmi-wire.md §3, §4), calling the shared state in server-core.ts for everything that is not
// wire format. Replies follow what MPICH 4.0.2's simple PMI client reads, field order included.
import { decodeSpawnV1 } from './spawn.js';
import { SpawnAccumulator, formatV1, isV1PutValueWhole, isV1Safe, parseV1Line, type V1Message } from './wire1.js';
import { lookupKey, toInt, type Conn, type Group, type RankRec, type ServerCore } from './server-core.js';

/** What get_maxes answers (hydra's values; docs/pmi-wire.md §1.2 explains why they must stay). */
export const PMI_MAXES = { kvsname_max: 256, keylen_max: 64, vallen_max: 1024 } as const;

const BARRIER_OUT = formatV1('barrier_out', [['rc', 0]]);

/** Reply command names for PMI-1 requests that need an initialized rank. */
const V1_REPLY: Record<string, string | undefined> = Object.assign(Object.create(null) as Record<string, string | undefined>, {
  get_maxes: 'maxes',
  get_appnum: 'appnum',
  get_my_kvsname: 'my_kvsname',
  get_universe_size: 'universe_size',
  put: 'put_result',
  get: 'get_result',
  barrier_in: 'barrier_out',
  finalize: 'finalize_ack',
  publish_name: 'publish_result',
  unpublish_name: 'unpublish_result',
  lookup_name: 'lookup_result',
});

/** PMI-1 `msg=` values cannot hold spaces; hydra writes `key_x_not_found` style. */
function v1Msg(text: string): string {
  return text.replace(/[\s=]+/g, '_');
}

function reply1(core: ServerCore, conn: Conn, cmd: string, pairs: ReadonlyArray<readonly [string, string | number]>): void {
  core.send(conn, formatV1(cmd, pairs));
}

function err1(core: ServerCore, conn: Conn, cmd: string, message: string, rc = -1): void {
  reply1(core, conn, cmd, [
    ['rc', rc],
    ['msg', v1Msg(message)],
  ]);
}

/** One PMI-1 line from the decoder; `mcmd` marks the lines of a `mcmd=spawn ... endcmd` block. */
export function handleV1Line(core: ServerCore, conn: Conn, line: string, mcmd: boolean): void {
  if (mcmd) return handleSpawnLine(core, conn, line);
  if (conn.spawn?.active) return core.fail(conn, 'PMI-1 command inside a spawn request');
  const msg = parseV1Line(line);
  if (!msg) return core.fail(conn, `malformed PMI-1 line ${JSON.stringify(line.slice(0, 80))}`);
  if (msg.multi) return core.fail(conn, `unknown multi-line command ${msg.cmd}`);
  if (msg.cmd === 'put' && !isV1PutValueWhole(line)) return refusePut(core, conn, msg);
  handleCommand(core, conn, msg);
}

/** Never store part of a value: answer rc=1 and tell the user which rank sent it. */
function refusePut(core: ServerCore, conn: Conn, msg: V1Message): void {
  const key = msg.fields.get('key') ?? '';
  const info = conn.rank?.info;
  if (info) {
    core.events.refused?.(
      info,
      `rank ${info.rank}: PMI-1 put of key ${JSON.stringify(key)} refused: its value holds a space, which the PMI-1 wire cannot carry (hint: the program must encode such values before putting them)`,
    );
  }
  err1(core, conn, 'put_result', `value_of_${key}_holds_a_space`, 1);
}

function handleCommand(core: ServerCore, conn: Conn, msg: V1Message): void {
  const f = msg.fields;
  switch (msg.cmd) {
    case 'initack':
      return initack(core, conn, f);
    case 'init':
      return init(core, conn, f);
    case 'abort':
      return core.abort(conn, toInt(f.get('exitcode')) ?? -1, f.get('message') ?? '');
  }
  const replyName = V1_REPLY[msg.cmd];
  if (replyName === undefined) return core.fail(conn, `unknown PMI-1 command ${msg.cmd}`);
  const rec = conn.rank;
  const g = conn.group;
  if (!rec || !g) return core.fail(conn, `PMI-1 ${msg.cmd} from a connection with no rank identity`);
  if (!core.initialized(conn)) return err1(core, conn, replyName, 'not initialized');
  switch (msg.cmd) {
    case 'get_maxes':
      return reply1(core, conn, 'maxes', [
        ['rc', 0],
        ['kvsname_max', PMI_MAXES.kvsname_max],
        ['keylen_max', PMI_MAXES.keylen_max],
        ['vallen_max', PMI_MAXES.vallen_max],
      ]);
    case 'get_appnum':
      return reply1(core, conn, 'appnum', [
        ['rc', 0],
        ['appnum', rec.info.appnum],
      ]);
    case 'get_my_kvsname':
      return reply1(core, conn, 'my_kvsname', [
        ['rc', 0],
        ['kvsname', g.info.kvsname],
      ]);
    case 'get_universe_size':
      return reply1(core, conn, 'universe_size', [
        ['rc', 0],
        ['size', g.info.universeSize],
      ]);
    case 'put': {
      if (f.get('kvsname') !== g.info.kvsname) return err1(core, conn, 'put_result', `wrong kvsname ${f.get('kvsname') ?? ''}`);
      const key = f.get('key');
      if (!key) return err1(core, conn, 'put_result', 'missing key');
      const value = f.get('value') ?? '';
      const over = core.admitPut(conn, key, value);
      if (over !== undefined) return err1(core, conn, 'put_result', over);
      g.pending.push([key, value]);
      return reply1(core, conn, 'put_result', [['rc', 0]]);
    }
    case 'get': {
      const target = core.groups.get(f.get('kvsname') ?? '');
      if (!target) return err1(core, conn, 'get_result', `unknown kvsname ${f.get('kvsname') ?? ''}`);
      const key = f.get('key') ?? '';
      const value = lookupKey(target, key);
      if (value === undefined) return err1(core, conn, 'get_result', `key_${key}_not_found`);
      if (!isV1Safe(value)) return err1(core, conn, 'get_result', `value_of_${key}_not_representable_in_PMI-1`);
      return reply1(core, conn, 'get_result', [
        ['rc', 0],
        ['value', value],
      ]);
    }
    case 'barrier_in':
      return core.enterBarrier(conn, (error) => {
        if (error === undefined) core.send(conn, BARRIER_OUT);
        else err1(core, conn, 'barrier_out', error);
      });
    case 'finalize':
      core.markFinalized(rec);
      return reply1(core, conn, 'finalize_ack', [['rc', 0]]);
    case 'publish_name': {
      const service = f.get('service');
      if (!service) return err1(core, conn, 'publish_result', 'missing service', 1);
      return core.call(
        () => core.upstream.publish(service, f.get('port') ?? ''),
        (ok) => (ok ? reply1(core, conn, 'publish_result', [['rc', 0]]) : err1(core, conn, 'publish_result', 'key_already_present', 1)),
        (m) => err1(core, conn, 'publish_result', m, 1),
      );
    }
    case 'unpublish_name': {
      const service = f.get('service');
      if (!service) return err1(core, conn, 'unpublish_result', 'missing service', 1);
      return core.call(
        () => core.upstream.unpublish(service),
        (ok) => (ok ? reply1(core, conn, 'unpublish_result', [['rc', 0]]) : err1(core, conn, 'unpublish_result', 'service_not_found', 1)),
        (m) => err1(core, conn, 'unpublish_result', m, 1),
      );
    }
    case 'lookup_name': {
      const service = f.get('service');
      if (!service) return err1(core, conn, 'lookup_result', 'missing service', 1);
      return core.call(
        () => core.upstream.lookup(service),
        (port) => {
          if (port === undefined) return err1(core, conn, 'lookup_result', 'service_not_found', 1);
          if (!isV1Safe(port)) return err1(core, conn, 'lookup_result', 'port_not_representable_in_PMI-1', 1);
          reply1(core, conn, 'lookup_result', [
            ['rc', 0],
            ['port', port],
          ]);
        },
        (m) => err1(core, conn, 'lookup_result', m, 1),
      );
    }
  }
  return core.fail(conn, `unhandled PMI-1 command ${msg.cmd}`);
}

function initack(core: ServerCore, conn: Conn, f: Map<string, string>): void {
  const id = toInt(f.get('pmiid'));
  if (id === undefined) return core.fail(conn, `initack with bad pmiid ${JSON.stringify(f.get('pmiid') ?? '')}`);
  if (!conn.rank) {
    if (!core.idResolver) return core.fail(conn, 'initack, but this server has no PMI id resolver');
    const info = core.idResolver(id);
    if (!info) return core.fail(conn, `initack with unknown pmiid ${id}`);
    const err = core.bind(conn, info);
    if (err !== undefined) return core.fail(conn, err);
  }
  const rec = conn.rank as RankRec;
  const g = conn.group as Group;
  // Order matters: the 4.0.2 client reads these lines one by one (docs/pmi-wire.md §3.2). Main's client wants
  // rc=0 on the first line; 4.0.2 ignores the extra fields.
  const first: Array<[string, string | number]> = [
    ['rc', 0],
    ['rank', rec.info.rank],
    ['size', g.info.size],
    ['appnum', rec.info.appnum],
  ];
  if (g.info.spawned && g.info.parentKvsname && isV1Safe(g.info.parentKvsname)) {
    first.push(['spawner-jobid', g.info.parentKvsname]);
  }
  first.push(['debug', 0]);
  core.send(
    conn,
    formatV1('initack', first) +
      formatV1('set', [['size', g.info.size]]) +
      formatV1('set', [['rank', rec.info.rank]]) +
      formatV1('set', [['debug', 0]]),
  );
}

function init(core: ServerCore, conn: Conn, f: Map<string, string>): void {
  const rec = conn.rank;
  const version = toInt(f.get('pmi_version'));
  if (version === 2) {
    // A PMI-2 client's first message is this v1 line; fullinit follows and completes init. Over PMI_PORT the
    // connection learns its rank only from that fullinit (PMI-2 has no initack step, docs/pmi-wire.md §3.3).
    return reply1(core, conn, 'response_to_init', [
      ['rc', 0],
      ['pmi_version', 2],
      ['pmi_subversion', 0],
    ]);
  }
  if (!rec) return core.fail(conn, 'PMI-1 init from a connection with no rank identity (no PMI_FD attach, no initack)');
  if (version !== 1) {
    return reply1(core, conn, 'response_to_init', [
      ['rc', -1],
      ['pmi_version', 1],
      ['pmi_subversion', 1],
    ]);
  }
  // Subversion 1, never 1.2: a main client seeing 1.2 switches to group barriers (docs/pmi-wire.md §3.1).
  reply1(core, conn, 'response_to_init', [
    ['rc', 0],
    ['pmi_version', 1],
    ['pmi_subversion', 1],
  ]);
  core.markInitialized(rec);
}

function handleSpawnLine(core: ServerCore, conn: Conn, line: string): void {
  conn.spawn ??= new SpawnAccumulator();
  const r = conn.spawn.push(line);
  if (r.kind === 'more') return;
  if (r.kind === 'error') return core.fail(conn, `bad spawn request: ${r.message}`);
  const rec = conn.rank;
  if (!rec || !conn.group) return core.fail(conn, 'spawn from a connection with no rank identity');
  if (!core.initialized(conn)) return err1(core, conn, 'spawn_result', 'not initialized');
  const d = decodeSpawnV1(r.segments);
  if (!d.ok) return err1(core, conn, 'spawn_result', d.error);
  core.spawn(
    { parentKvsname: rec.info.kvsname, parentRank: rec.info.rank, commands: d.commands, preput: d.preput, protocol: 1 },
    (res) => (res.ok ? reply1(core, conn, 'spawn_result', [['rc', 0]]) : err1(core, conn, 'spawn_result', res.error)),
  );
}
