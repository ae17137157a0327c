// PMI-2 conversations against PmiServer: the v1 init line, 4.0.2's odd fullinit framing, kvs put/fence/get,
// job attributes, node attributes with wait=TRUE, name service, spawn, abort, thrid echo (pmi-wire.md §3.3, §5).
import { describe, expect, it } from 'vitest';
import { KvsService } from '../../src/pmi/kvs-service.js';
import { MemoryPmiPeer } from '../../src/pmi/memory-peer.js';
import { PmiServer, type PmiGroupInfo, type SpawnRequest } from '../../src/pmi/server.js';
import { formatV2 } from '../../src/pmi/wire2.js';

const settle = () => new Promise<void>((r) => setImmediate(r));

function setup(group: Partial<PmiGroupInfo> = {}, ranks = 2) {
  const service = new KvsService();
  const kvsname = group.kvsname ?? 'kvs_7_0';
  service.addGroup(kvsname, 1);
  const aborts: Array<[number | undefined, number, string]> = [];
  const errors: string[] = [];
  const spawns: SpawnRequest[] = [];
  const server = new PmiServer({
    upstream: service.localUpstream(0, (req) => {
      spawns.push(req);
      return Promise.resolve({ ok: true, kvsname: 'kvs_7_1' });
    }),
    events: {
      initialized: () => {},
      finalized: () => {},
      aborted: (r, code, msg) => aborts.push([r?.rank, code, msg]),
      protocolError: (_c, m) => errors.push(m),
    },
  });
  server.addGroup({
    kvsname,
    size: ranks,
    processMapping: `(vector,(0,1,${ranks}))`,
    universeSize: 8,
    localCount: ranks,
    spawned: false,
    ...group,
  });
  const peers = Array.from({ length: ranks }, (_, r) => new MemoryPmiPeer(server, r, { rank: r, kvsname, appnum: 0 }));
  /** Send a framed PMI-2 command; return the raw replies (header included). */
  const cmd = (r: number, name: string, pairs: Array<[string, string]> = []): string => {
    peers[r]!.write(formatV2(name, pairs));
    return peers[r]!.takeRaw();
  };
  /** PMI-1 init line with version 2, then 4.0.2's fullinit: left-aligned, body+6, 6 junk bytes. */
  const fullinit402 = (r: number): string => {
    peers[r]!.write('cmd=init pmi_version=2 pmi_subversion=0\n');
    expect(peers[r]!.takeRaw()).toBe('cmd=response_to_init rc=0 pmi_version=2 pmi_subversion=0\n');
    const body = `cmd=fullinit;pmirank=${r};threaded=FALSE;`;
    const header = String(body.length + 6).padEnd(6, ' ');
    peers[r]!.write(Buffer.concat([Buffer.from(header + body), Buffer.from([0x00, 0x41, 0x3b, 0x3d, 0xff, 0x07])]));
    return peers[r]!.takeRaw();
  };
  return { service, server, peers, cmd, fullinit402, aborts, errors, spawns, kvsname };
}

describe('PMI-2', () => {
  it('answers 4.0.2 fullinit (odd header) with every field 4.0.2 requires', () => {
    const t = setup();
    expect(t.fullinit402(0)).toBe(
      '   113cmd=fullinit-response;pmi-version=2;pmi-subversion=0;rank=0;size=2;appnum=0;debugged=FALSE;pmiverbose=FALSE;rc=0;',
    );
    expect(t.server.state(0, t.kvsname)).toBe('initialized');
    expect(t.errors).toEqual([]);
  });

  it('answers main fullinit (%6u header) and marks a spawned group with spawner-jobid', () => {
    const t = setup({ spawned: true, parentKvsname: 'kvs_7_0p' }, 1);
    t.peers[0]!.write('    23cmd=fullinit;pmirank=0;');
    expect(t.peers[0]!.takeRaw()).toBe(
      formatV2('fullinit-response', [
        ['pmi-version', '2'], ['pmi-subversion', '0'], ['rank', '0'], ['size', '1'], ['appnum', '0'],
        ['spawner-jobid', 'kvs_7_0p'], ['debugged', 'FALSE'], ['pmiverbose', 'FALSE'], ['rc', '0'],
      ]),
    );
  });

  it('puts, fences (a real barrier) and gets', async () => {
    const t = setup();
    t.fullinit402(0);
    t.fullinit402(1);
    expect(t.cmd(0, 'job-getid')).toBe(formatV2('job-getid-response', [['jobid', t.kvsname], ['rc', '0']]));
    expect(t.cmd(0, 'kvs-put', [['key', 'k0'], ['value', 'semi;colon']])).toBe(formatV2('kvs-put-response', [['rc', '0']]));
    expect(t.cmd(1, 'kvs-put', [['key', 'k1'], ['value', 'v1']])).toBe(formatV2('kvs-put-response', [['rc', '0']]));
    expect(t.cmd(0, 'kvs-get', [['jobid', t.kvsname], ['srcid', '-1'], ['key', 'k1']])).toBe(
      formatV2('kvs-get-response', [['found', 'FALSE'], ['rc', '0']]),
    );
    expect(t.cmd(0, 'kvs-fence')).toBe('');
    await settle();
    expect(t.peers[0]!.takeRaw()).toBe('');
    expect(t.cmd(1, 'kvs-fence', [['thrid', '0x7f00']])).toBe('');
    await settle();
    expect(t.peers[0]!.takeRaw()).toBe('    28cmd=kvs-fence-response;rc=0;');
    expect(t.peers[1]!.takeRaw()).toBe(formatV2('kvs-fence-response', [['thrid', '0x7f00'], ['rc', '0']]));
    expect(t.cmd(0, 'kvs-get', [['jobid', t.kvsname], ['srcid', '1'], ['key', 'k1']])).toBe(
      formatV2('kvs-get-response', [['found', 'TRUE'], ['value', 'v1'], ['rc', '0']]),
    );
    expect(t.cmd(1, 'kvs-get', [['key', 'k0']])).toBe('    55cmd=kvs-get-response;found=TRUE;value=semi;;colon;rc=0;');
    expect(t.cmd(1, 'kvs-get', [['jobid', 'kvs_unknown'], ['key', 'k0']])).toBe(formatV2('kvs-get-response', [['found', 'FALSE'], ['rc', '0']]));
  });

  it('answers job attributes', () => {
    const t = setup();
    t.fullinit402(0);
    expect(t.cmd(0, 'info-getjobattr', [['key', 'PMI_process_mapping']])).toBe(
      formatV2('info-getjobattr-response', [['found', 'TRUE'], ['value', '(vector,(0,1,2))'], ['rc', '0']]),
    );
    expect(t.cmd(0, 'info-getjobattr', [['key', 'universeSize']])).toBe(
      formatV2('info-getjobattr-response', [['found', 'TRUE'], ['value', '8'], ['rc', '0']]),
    );
    expect(t.cmd(0, 'info-getjobattr', [['key', 'PMI_hwloc_xmlfile']])).toBe(
      formatV2('info-getjobattr-response', [['found', 'FALSE'], ['rc', '0']]),
    );
  });

  it('holds info-getnodeattr wait=TRUE until the key is put, and echoes thrid', () => {
    const t = setup();
    t.fullinit402(0);
    t.fullinit402(1);
    expect(t.cmd(1, 'info-getnodeattr', [['key', 'shm'], ['wait', 'FALSE']])).toBe(
      formatV2('info-getnodeattr-response', [['found', 'FALSE'], ['rc', '0']]),
    );
    expect(t.cmd(1, 'info-getnodeattr', [['thrid', 'T1'], ['key', 'shm'], ['wait', 'TRUE']])).toBe('');
    expect(t.cmd(0, 'info-putnodeattr', [['key', 'shm'], ['value', '/dev/shm/x']])).toBe(
      formatV2('info-putnodeattr-response', [['rc', '0']]),
    );
    expect(t.peers[1]!.takeRaw()).toBe(
      formatV2('info-getnodeattr-response', [['thrid', 'T1'], ['found', 'TRUE'], ['value', '/dev/shm/x'], ['rc', '0']]),
    );
    expect(t.cmd(0, 'info-getnodeattr', [['key', 'shm']])).toBe(
      formatV2('info-getnodeattr-response', [['found', 'TRUE'], ['value', '/dev/shm/x'], ['rc', '0']]),
    );
  });

  it('drops the waiter of a rank that vanished while waiting for a node attribute', () => {
    const t = setup();
    t.fullinit402(0);
    t.fullinit402(1);
    t.cmd(1, 'info-getnodeattr', [['key', 'x'], ['wait', 'TRUE']]);
    t.peers[1]!.end();
    t.cmd(0, 'info-putnodeattr', [['key', 'x'], ['value', '1']]);
    expect(t.peers[1]!.takeRaw()).toBe('');
    expect(t.errors).toEqual([]);
  });

  it('publishes and looks up names', async () => {
    const t = setup();
    t.fullinit402(0);
    const ask = async (name: string, pairs: Array<[string, string]>) => {
      t.cmd(0, name, pairs);
      await settle();
      return t.peers[0]!.takeRaw();
    };
    expect(await ask('name-publish', [['name', 's'], ['port', 'p;1'], ['infokeycount', '0']])).toBe(formatV2('name-publish-response', [['rc', '0']]));
    expect(await ask('name-publish', [['name', 's'], ['port', 'q']])).toBe(
      formatV2('name-publish-response', [['rc', '1'], ['errmsg', 'service s is already published']]),
    );
    expect(await ask('name-lookup', [['name', 's']])).toBe(formatV2('name-lookup-response', [['port', 'p;1'], ['value', 'p;1'], ['found', 'TRUE'], ['rc', '0']]));
    expect(await ask('name-unpublish', [['name', 's']])).toBe(formatV2('name-unpublish-response', [['rc', '0']]));
    expect(await ask('name-lookup', [['name', 's']])).toBe(formatV2('name-lookup-response', [['found', 'FALSE'], ['rc', '1']]));
  });

  it('decodes spawn and replies with the new jobid', async () => {
    const t = setup();
    t.fullinit402(0);
    t.peers[0]!.write(
      formatV2('spawn', [
        ['ncmds', '1'], ['preputcount', '1'], ['ppkey0', 'PARENT_ROOT_PORT_NAME'], ['ppval0', 'x'],
        ['subcmd', './c'], ['maxprocs', '3'], ['argc', '1'], ['argv0', '-q'], ['infokeycount', '0'],
      ]),
    );
    await settle();
    expect(t.peers[0]!.takeRaw()).toBe(formatV2('spawn-response', [['rc', '0'], ['jobid', 'kvs_7_1'], ['nerrs', '0']]));
    expect(t.spawns).toEqual([
      {
        parentKvsname: t.kvsname, parentRank: 0, protocol: 2, preput: [['PARENT_ROOT_PORT_NAME', 'x']],
        commands: [{ command: './c', args: ['-q'], maxprocs: 3, info: [] }],
      },
    ]);
  });

  it('reports both abort forms', () => {
    const t = setup();
    t.fullinit402(0);
    t.fullinit402(1);
    expect(t.cmd(0, 'abort', [['isworld', 'TRUE'], ['msg', 'application called MPI_Abort(MPI_COMM_WORLD, 42) - process 0']])).toBe('');
    expect(t.cmd(1, 'abort', [['exitcode', '-1'], ['message', 'bye']])).toBe('');
    expect(t.cmd(1, 'abort', [['isworld', 'TRUE'], ['msg', 'no code here']])).toBe('');
    expect(t.aborts).toEqual([
      [0, 42, 'application called MPI_Abort(MPI_COMM_WORLD, 42) - process 0'],
      [1, -1, 'bye'],
      [1, -1, 'no code here'],
    ]);
  });

  it('finalizes, and refuses commands before fullinit', () => {
    const t = setup();
    expect(t.cmd(0, 'kvs-put', [['key', 'a'], ['value', 'b']])).toBe(
      formatV2('kvs-put-response', [['rc', '1'], ['errmsg', 'not initialized']]),
    );
    t.fullinit402(0);
    expect(t.cmd(0, 'finalize', [['thrid', '9']])).toBe(formatV2('finalize-response', [['thrid', '9'], ['rc', '0']]));
    expect(t.server.state(0, t.kvsname)).toBe('finalized');
    expect(t.server.state(1, t.kvsname)).toBe('none');
  });

  it('learns the rank from pmirank via the id resolver when there was no attach identity', () => {
    const t = setup({}, 2);
    t.server.setIdResolver((id) => (id === 1 ? { rank: 1, kvsname: t.kvsname, appnum: 0 } : undefined));
    const p = new MemoryPmiPeer(t.server, 50);
    p.write('    23cmd=fullinit;pmirank=1;');
    // rank 1 is already attached through the setup peer: a second connection for it is refused.
    expect(p.closed).toBe(true);
    const q = new MemoryPmiPeer(t.server, 51);
    q.write('    24cmd=fullinit;pmirank=-1;');
    expect(q.takeRaw()).toContain('rc=1;');
    expect(q.closed).toBe(true);
  });
});
