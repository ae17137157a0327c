// The PMI-2 side of the PMI engine: answers one connection's length-framed `cmd=...;` messages
// (docs/pmi-wire.md §3.3, §5), calling the shared state in server-core.ts for everything that is not wire
// format. Every reply echoes the request's `thrid`. `kvs-fence` is a true barrier, so a kvs-get miss answers
// found=FALSE at once. Node attributes (info-putnodeattr) live in a per-group table on this proxy, visible at
// once; `wait=TRUE` holds the reply until the key is put.
import { decodeSpawnV2 } from './spawn.js';
import { formatV2, parseV2Body, type V2Message } from './wire2.js';
import { lookupKey, toInt, type Conn, type Group, type RankRec, type ServerCore } from './server-core.js';

type Reply = (pairs: Array<[string, string | number]>) => void;

const FENCE_OK = formatV2('kvs-fence-response', [['rc', 0]]);

const V2_COMMANDS = new Set([
  'job-getid',
  'kvs-put',
  'kvs-fence',
  'kvs-get',
  'info-getjobattr',
  'info-putnodeattr',
  'info-getnodeattr',
  'name-publish',
  'name-unpublish',
  'name-lookup',
  'spawn',
  'finalize',
  'job-connect',
  'job-disconnect',
]);

/** One PMI-2 message body (the decoder has taken off the length header). */
export function handleV2Body(core: ServerCore, conn: Conn, body: string): void {
  const msg = parseV2Body(body);
  if (!msg) return core.fail(conn, `malformed PMI-2 message ${JSON.stringify(body.slice(0, 80))}`);
  const thrid = msg.fields.get('thrid');
  const respName = `${msg.cmd}-response`;
  const reply: Reply = (pairs) =>
    core.send(conn, formatV2(respName, thrid !== undefined ? [['thrid', thrid], ...pairs] : pairs));
  const fail2 = (errmsg: string): void => reply([['rc', 1], ['errmsg', errmsg]]);
  const f = msg.fields;

  if (msg.cmd === 'fullinit') return fullinit(core, conn, msg, reply);
  if (msg.cmd === 'abort') return core.abort(conn, abortCode(msg), f.get('message') ?? f.get('msg') ?? '');
  if (!V2_COMMANDS.has(msg.cmd)) return core.fail(conn, `unknown PMI-2 command ${msg.cmd}`);
  const rec = conn.rank;
  const g = conn.group;
  if (!rec || !g) return core.fail(conn, `PMI-2 ${msg.cmd} from a connection with no rank identity`);
  if (!core.initialized(conn)) return fail2('not initialized');

  switch (msg.cmd) {
    case 'job-getid':
      return reply([['jobid', g.info.kvsname], ['rc', 0]]);
    case 'kvs-put': {
      const key = f.get('key');
      if (!key) return fail2('missing key');
      const value = f.get('value') ?? '';
      const over = core.admitPut(conn, key, value);
      if (over !== undefined) return fail2(over);
      g.pending.push([key, value]);
      return reply([['rc', 0]]);
    }
    case 'kvs-fence':
      return core.enterBarrier(conn, (error) => {
        const t: Array<[string, string]> = thrid !== undefined ? [['thrid', thrid]] : [];
        if (error === undefined && t.length === 0) core.send(conn, FENCE_OK);
        else if (error === undefined) core.send(conn, formatV2('kvs-fence-response', [...t, ['rc', 0]]));
        else core.send(conn, formatV2('kvs-fence-response', [...t, ['rc', 1], ['errmsg', error]]));
      });
    case 'kvs-get': {
      const jobid = f.get('jobid');
      const target = jobid === undefined || jobid === '' ? g : core.groups.get(jobid);
      const value = target ? lookupKey(target, f.get('key') ?? '') : undefined;
      return reply(value === undefined ? [['found', 'FALSE'], ['rc', 0]] : [['found', 'TRUE'], ['value', value], ['rc', 0]]);
    }
    case 'info-getjobattr': {
      const key = f.get('key') ?? '';
      const value = key === 'universeSize' ? String(g.info.universeSize) : lookupKey(g, key);
      return reply(value === undefined ? [['found', 'FALSE'], ['rc', 0]] : [['found', 'TRUE'], ['value', value], ['rc', 0]]);
    }
    case 'info-putnodeattr': {
      const key = f.get('key');
      if (!key) return fail2('missing key');
      const value = f.get('value') ?? '';
      g.nodeAttrs.set(key, value);
      reply([['rc', 0]]);
      const waiters = g.nodeWaiters.get(key);
      if (waiters) {
        g.nodeWaiters.delete(key);
        for (const w of waiters) {
          const t: Array<[string, string]> = w.thrid !== undefined ? [['thrid', w.thrid]] : [];
          core.send(w.conn, formatV2('info-getnodeattr-response', [...t, ['found', 'TRUE'], ['value', value], ['rc', 0]]));
        }
      }
      return;
    }
    case 'info-getnodeattr': {
      const key = f.get('key') ?? '';
      const value = g.nodeAttrs.get(key);
      if (value !== undefined) return reply([['found', 'TRUE'], ['value', value], ['rc', 0]]);
      if (f.get('wait') === 'TRUE') {
        const list = g.nodeWaiters.get(key) ?? [];
        list.push({ conn, thrid });
        g.nodeWaiters.set(key, list);
        return;
      }
      return reply([['found', 'FALSE'], ['rc', 0]]);
    }
    case 'name-publish': {
      const name = f.get('name');
      if (!name) return fail2('missing name');
      return core.call(
        () => core.upstream.publish(name, f.get('port') ?? ''),
        (ok) => (ok ? reply([['rc', 0]]) : fail2(`service ${name} is already published`)),
        fail2,
      );
    }
    case 'name-unpublish': {
      const name = f.get('name');
      if (!name) return fail2('missing name');
      return core.call(
        () => core.upstream.unpublish(name),
        (ok) => (ok ? reply([['rc', 0]]) : fail2(`service ${name} is not published`)),
        fail2,
      );
    }
    case 'name-lookup': {
      const name = f.get('name');
      if (!name) return fail2('missing name');
      return core.call(
        () => core.upstream.lookup(name),
        // MPICH's PMI-2 client reads the port from `port`, Slurm's libpmi2 from `value` (Hydra sends only
        // `port`, so libpmi2's lookup fails under Hydra): send both.
        (port) => reply(port === undefined ? [['found', 'FALSE'], ['rc', 1]] : [['port', port], ['value', port], ['found', 'TRUE'], ['rc', 0]]),
        fail2,
      );
    }
    case 'spawn': {
      const d = decodeSpawnV2(msg.pairs);
      if (!d.ok) return reply([['rc', 1], ['errmsg', d.error], ['nerrs', 0]]);
      return core.spawn(
        { parentKvsname: rec.info.kvsname, parentRank: rec.info.rank, commands: d.commands, preput: d.preput, protocol: 2 },
        (res) =>
          res.ok
            ? reply([['rc', 0], ['jobid', res.kvsname], ['nerrs', 0]])
            : reply([['rc', 1], ['errmsg', res.error], ['nerrs', 0]]),
      );
    }
    case 'finalize':
      core.markFinalized(rec);
      return reply([['rc', 0]]);
    case 'job-connect':
    case 'job-disconnect':
      return fail2(`${msg.cmd} is not supported`);
  }
  return core.fail(conn, `unhandled PMI-2 command ${msg.cmd}`);
}

function fullinit(core: ServerCore, conn: Conn, msg: V2Message, reply: Reply): void {
  if (!conn.rank) {
    // MPICH sends pmirank= (PMI_ID, else PMI_RANK); Slurm's libpmi2 sends srcid= when PMI_ID is set, else pmirank=.
    const idText = msg.fields.get('pmirank') ?? msg.fields.get('srcid');
    const id = toInt(idText);
    const info = id !== undefined && id >= 0 && core.idResolver ? core.idResolver(id) : undefined;
    if (!info) {
      reply([['rc', 1], ['errmsg', 'cannot tell which rank this connection is']]);
      return core.fail(conn, `fullinit with unknown PMI id ${JSON.stringify(idText ?? '')}`);
    }
    const err = core.bind(conn, info);
    if (err !== undefined) return core.fail(conn, err);
  }
  const rec = conn.rank as RankRec;
  const g = conn.group as Group;
  // Every field 4.0.2 requires, booleans as TRUE/FALSE (docs/pmi-wire.md §3.3).
  const pairs: Array<[string, string | number]> = [
    ['pmi-version', 2],
    ['pmi-subversion', 0],
    ['rank', rec.info.rank],
    ['size', g.info.size],
    ['appnum', rec.info.appnum],
  ];
  if (g.info.spawned) pairs.push(['spawner-jobid', g.info.parentKvsname ?? '']);
  pairs.push(['debugged', 'FALSE'], ['pmiverbose', 'FALSE'], ['rc', 0]);
  reply(pairs);
  core.markInitialized(rec);
}

/**
 * PMI-2 abort: main sends `exitcode=`; 4.0.2 sends only `isworld=;msg=` and exits -1 itself, so take the code
 * from MPICH's "MPI_Abort(comm, N)" text when present, else -1.
 */
function abortCode(msg: V2Message): number {
  const code = toInt(msg.fields.get('exitcode'));
  if (code !== undefined) return code;
  const text = msg.fields.get('message') ?? msg.fields.get('msg') ?? '';
  const m = /MPI_Abort\([^,()]*,\s*(-?\d{1,10})\)/.exec(text);
  return m ? Number(m[1]) : -1;
}
