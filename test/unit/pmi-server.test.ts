// PMI engine conversations: fake ranks (in-memory connections) talking PMI-1 to PmiServer proxies whose barriers
// go through one KvsService, checked against the exact replies MPICH 4.0.2 expects (pmi-wire.md §3–§7).
import { describe, expect, it } from 'vitest';
import { KvsService } from '../../src/pmi/kvs-service.js';
import { MemoryPmiPeer } from '../../src/pmi/memory-peer.js';
import { PmiServer, type PmiRankInfo, type PmiServerEvents, type SpawnRequest, type SpawnResult } from '../../src/pmi/server.js';

/** Let upstream promises (barriers, name service) settle. */
const settle = () => new Promise<void>((r) => setImmediate(r));

type Ev =
  | { e: 'initialized'; rank: number }
  | { e: 'finalized'; rank: number }
  | { e: 'aborted'; rank: number | undefined; code: number; message: string }
  | { e: 'protocolError'; conn: number; message: string }
  | { e: 'refused'; rank: number; message: string };

function recorder(log: Ev[]): PmiServerEvents {
  return {
    initialized: (r) => log.push({ e: 'initialized', rank: r.rank }),
    finalized: (r) => log.push({ e: 'finalized', rank: r.rank }),
    aborted: (r, code, message) => log.push({ e: 'aborted', rank: r?.rank, code, message }),
    protocolError: (conn, message) => log.push({ e: 'protocolError', conn, message }),
    refused: (r, message) => log.push({ e: 'refused', rank: r.rank, message }),
  };
}

interface JobOpts {
  /** Ranks per proxy, e.g. [[0,1],[2,3]]. */
  proxies: number[][];
  kvsname?: string;
  processMapping?: string;
  spawn?: (req: SpawnRequest) => Promise<SpawnResult>;
}

function job(o: JobOpts) {
  const kvsname = o.kvsname ?? 'kvs_42_0';
  const size = o.proxies.flat().length;
  const service = new KvsService();
  service.addGroup(kvsname, o.proxies.length);
  const events: Ev[] = [];
  const spawns: SpawnRequest[] = [];
  const spawnFn =
    o.spawn ??
    ((req: SpawnRequest) => {
      spawns.push(req);
      return Promise.resolve<SpawnResult>({ ok: true, kvsname: `kvs_child_${spawns.length}` });
    });
  const servers = o.proxies.map((ranks, p) => {
    const s = new PmiServer({ upstream: service.localUpstream(p, spawnFn), events: recorder(events) });
    s.addGroup({
      kvsname,
      size,
      processMapping: o.processMapping ?? `(vector,(0,${o.proxies.length},${ranks.length}))`,
      universeSize: size,
      localCount: ranks.length,
      spawned: false,
    });
    return s;
  });
  const peers: MemoryPmiPeer[] = [];
  o.proxies.forEach((ranks, p) => {
    for (const r of ranks) peers[r] = new MemoryPmiPeer(servers[p]!, 100 + r, { rank: r, kvsname, appnum: 0 });
  });
  /** Send one line from rank r and return what came back (synchronously). */
  const say = (r: number, line: string): string[] => {
    peers[r]!.write(line + '\n');
    return peers[r]!.takeLines();
  };
  return { kvsname, service, servers, peers, events, spawns, say };
}

describe('PMI-1 conversations', () => {
  it('serves the exact 4.0.2 MPI_Init / MPI_Finalize exchange of two ranks on one node', async () => {
    const j = job({ proxies: [[0, 1]], processMapping: '(vector,(0,1,2))' });
    const k = j.kvsname;
    for (const r of [0, 1]) {
      expect(j.say(r, 'cmd=init pmi_version=1 pmi_subversion=1')).toEqual(['cmd=response_to_init rc=0 pmi_version=1 pmi_subversion=1']);
      expect(j.say(r, 'cmd=get_maxes')).toEqual(['cmd=maxes rc=0 kvsname_max=256 keylen_max=64 vallen_max=1024']);
      expect(j.say(r, 'cmd=get_appnum')).toEqual(['cmd=appnum rc=0 appnum=0']);
      expect(j.say(r, 'cmd=get_my_kvsname')).toEqual([`cmd=my_kvsname rc=0 kvsname=${k}`]);
      expect(j.say(r, `cmd=get kvsname=${k} key=PMI_process_mapping`)).toEqual(['cmd=get_result rc=0 value=(vector,(0,1,2))']);
    }
    // First barrier: nobody is released until both entered.
    expect(j.say(0, 'cmd=barrier_in')).toEqual([]);
    await settle();
    expect(j.peers[0]!.takeLines()).toEqual([]);
    expect(j.say(1, 'cmd=barrier_in')).toEqual([]);
    await settle();
    expect(j.peers[0]!.takeLines()).toEqual(['cmd=barrier_out rc=0']);
    expect(j.peers[1]!.takeLines()).toEqual(['cmd=barrier_out rc=0']);

    // Rank 0 broadcasts; the value is invisible until the barrier, even to rank 0.
    expect(j.say(0, `cmd=put kvsname=${k} key=-bcast-1-0 value=00AB`)).toEqual(['cmd=put_result rc=0']);
    expect(j.say(0, `cmd=get kvsname=${k} key=-bcast-1-0`)).toEqual(['cmd=get_result rc=-1 msg=key_-bcast-1-0_not_found']);
    j.say(0, 'cmd=barrier_in');
    j.say(1, 'cmd=barrier_in');
    await settle();
    expect(j.peers[1]!.takeLines()).toEqual(['cmd=barrier_out rc=0']);
    j.peers[0]!.takeLines();
    expect(j.say(1, `cmd=get kvsname=${k} key=-bcast-1-0`)).toEqual(['cmd=get_result rc=0 value=00AB']);

    // allgather
    for (const r of [0, 1]) j.say(r, `cmd=put kvsname=${k} key=-allgather-shm-1-${r} value=${r}F${r}`);
    for (const r of [0, 1]) j.say(r, 'cmd=barrier_in');
    await settle();
    for (const r of [0, 1]) {
      expect(j.peers[r]!.takeLines()).toEqual(['cmd=barrier_out rc=0']);
      for (const o of [0, 1]) {
        expect(j.say(r, `cmd=get kvsname=${k} key=-allgather-shm-1-${o}`)).toEqual([`cmd=get_result rc=0 value=${o}F${o}`]);
      }
    }
    // MPI_Finalize
    for (const r of [0, 1]) j.say(r, 'cmd=barrier_in');
    await settle();
    for (const r of [0, 1]) {
      expect(j.peers[r]!.takeLines()).toEqual(['cmd=barrier_out rc=0']);
      expect(j.servers[0]!.state(r, k)).toBe('initialized');
      expect(j.say(r, 'cmd=finalize')).toEqual(['cmd=finalize_ack rc=0']);
      expect(j.servers[0]!.state(r, k)).toBe('finalized');
    }
    expect(j.events).toEqual([
      { e: 'initialized', rank: 0 },
      { e: 'initialized', rank: 1 },
      { e: 'finalized', rank: 0 },
      { e: 'finalized', rank: 1 },
    ]);
    expect(j.service.barriersCompleted(k)).toBe(4);
  });

  it('completes a barrier across two proxies and shares every proxy puts', async () => {
    const j = job({ proxies: [[0, 1], [2, 3]] });
    const k = j.kvsname;
    for (const r of [0, 1, 2, 3]) {
      j.say(r, 'cmd=init pmi_version=1 pmi_subversion=1');
      j.say(r, `cmd=put kvsname=${k} key=host[${r}] value=h${r >> 1}`);
    }
    for (const r of [0, 1, 2]) j.say(r, 'cmd=barrier_in');
    await settle();
    // proxy 0 is complete locally, proxy 1 is not: nobody may leave yet.
    for (const r of [0, 1, 2]) expect(j.peers[r]!.takeLines()).toEqual([]);
    j.say(3, 'cmd=barrier_in');
    await settle();
    for (const r of [0, 1, 2, 3]) expect(j.peers[r]!.takeLines()).toEqual(['cmd=barrier_out rc=0']);
    for (const r of [0, 3]) {
      for (const o of [0, 1, 2, 3]) {
        expect(j.say(r, `cmd=get kvsname=${k} key=host[${o}]`)).toEqual([`cmd=get_result rc=0 value=h${o >> 1}`]);
      }
    }
  });

  it('answers PMI_dead_processes, and a missing or empty mapping as a miss', () => {
    const j = job({ proxies: [[0]], processMapping: '' });
    j.say(0, 'cmd=init pmi_version=1 pmi_subversion=1');
    expect(j.say(0, `cmd=get kvsname=${j.kvsname} key=PMI_process_mapping`)).toEqual([
      'cmd=get_result rc=-1 msg=key_PMI_process_mapping_not_found',
    ]);
    expect(j.say(0, `cmd=get kvsname=${j.kvsname} key=PMI_dead_processes`)).toEqual(['cmd=get_result rc=0 value=']);
    expect(j.say(0, 'cmd=get_universe_size')).toEqual(['cmd=universe_size rc=0 size=1']);
  });

  it('publishes, looks up and unpublishes names across proxies', async () => {
    const j = job({ proxies: [[0], [1]] });
    for (const r of [0, 1]) j.say(r, 'cmd=init pmi_version=1 pmi_subversion=1');
    const ask = async (r: number, line: string) => {
      j.say(r, line);
      await settle();
      return j.peers[r]!.takeLines();
    };
    expect(await ask(0, 'cmd=publish_name service=ocean port=tag#0$description#x$')).toEqual(['cmd=publish_result rc=0']);
    expect(await ask(1, 'cmd=publish_name service=ocean port=other')).toEqual(['cmd=publish_result rc=1 msg=key_already_present']);
    expect(await ask(1, 'cmd=lookup_name service=ocean')).toEqual(['cmd=lookup_result rc=0 port=tag#0$description#x$']);
    expect(await ask(1, 'cmd=publish_name service=empty port=')).toEqual(['cmd=publish_result rc=0']);
    expect(await ask(0, 'cmd=lookup_name service=empty')).toEqual(['cmd=lookup_result rc=0 port=']);
    expect(await ask(1, 'cmd=unpublish_name service=ocean')).toEqual(['cmd=unpublish_result rc=0']);
    expect(await ask(0, 'cmd=unpublish_name service=ocean')).toEqual(['cmd=unpublish_result rc=1 msg=service_not_found']);
    expect(await ask(0, 'cmd=lookup_name service=ocean')).toEqual(['cmd=lookup_result rc=1 msg=service_not_found']);
    expect(j.service.lookup('empty')).toBe('');
  });

  it('reports abort with its code and message and sends no reply', () => {
    const j = job({ proxies: [[0, 1]] });
    j.say(1, 'cmd=init pmi_version=1 pmi_subversion=1');
    expect(j.say(1, 'cmd=abort exitcode=7')).toEqual([]);
    expect(j.say(0, 'cmd=abort exitcode=-1 message=abort')).toEqual([]);
    expect(j.events.filter((e) => e.e === 'aborted')).toEqual([
      { e: 'aborted', rank: 1, code: 7, message: '' },
      { e: 'aborted', rank: 0, code: -1, message: 'abort' },
    ]);
    expect(j.peers[1]!.closed).toBe(false);
  });

  it('refuses a put whose value holds a space instead of storing the part before it, and names the rank', async () => {
    const j = job({ proxies: [[0, 1]] });
    const k = j.kvsname;
    for (const r of [0, 1]) j.say(r, 'cmd=init pmi_version=1 pmi_subversion=1');
    expect(j.say(1, `cmd=put kvsname=${k} key=ompi value=a b c`)).toEqual(['cmd=put_result rc=1 msg=value_of_ompi_holds_a_space']);
    expect(j.say(1, `cmd=put kvsname=${k} key=trail value=x `)).toEqual(['cmd=put_result rc=1 msg=value_of_trail_holds_a_space']);
    const refused = j.events.filter((e) => e.e === 'refused');
    expect(refused).toHaveLength(2);
    expect(refused[0]).toMatchObject({ rank: 1 });
    expect((refused[0] as { message: string }).message).toMatch(/^rank 1: .*"ompi".*space/);
    expect(j.say(1, `cmd=put kvsname=${k} key=fine value=a=b`)).toEqual(['cmd=put_result rc=0']);
    j.say(0, 'cmd=barrier_in');
    j.say(1, 'cmd=barrier_in');
    await settle();
    for (const r of [0, 1]) expect(j.peers[r]!.takeLines()).toEqual(['cmd=barrier_out rc=0']);
    expect(j.say(0, `cmd=get kvsname=${k} key=ompi`)).toEqual(['cmd=get_result rc=-1 msg=key_ompi_not_found']);
    expect(j.say(0, `cmd=get kvsname=${k} key=fine`)).toEqual(['cmd=get_result rc=0 value=a=b']);
  });

  it('refuses work before init, wrong kvsnames and missing keys with error replies', () => {
    const j = job({ proxies: [[0, 1]] });
    const k = j.kvsname;
    expect(j.say(0, 'cmd=get_maxes')).toEqual(['cmd=maxes rc=-1 msg=not_initialized']);
    expect(j.say(0, 'cmd=barrier_in')).toEqual(['cmd=barrier_out rc=-1 msg=not_initialized']);
    j.say(0, 'cmd=init pmi_version=1 pmi_subversion=1');
    expect(j.say(0, 'cmd=put kvsname=other key=a value=b')).toEqual(['cmd=put_result rc=-1 msg=wrong_kvsname_other']);
    expect(j.say(0, `cmd=put kvsname=${k} value=b`)).toEqual(['cmd=put_result rc=-1 msg=missing_key']);
    expect(j.say(0, 'cmd=get kvsname=nope key=a')).toEqual(['cmd=get_result rc=-1 msg=unknown_kvsname_nope']);
    expect(j.say(0, `cmd=get kvsname=${k} key=never`)).toEqual(['cmd=get_result rc=-1 msg=key_never_not_found']);
    expect(j.say(0, 'cmd=init pmi_version=3 pmi_subversion=0')).toEqual(['cmd=response_to_init rc=-1 pmi_version=1 pmi_subversion=1']);
    expect(j.servers[0]!.state(1, k)).toBe('none');
    expect(j.events.filter((e) => e.e === 'protocolError')).toEqual([]);
  });

  it('hands a PMI-1 spawn to the upstream as a SpawnRequest and replies spawn_result', async () => {
    const j = job({ proxies: [[0]] });
    j.say(0, 'cmd=init pmi_version=1 pmi_subversion=1');
    // 4.0.2 writes each line separately; feed them one by one, some split mid-line.
    const lines = [
      'mcmd=spawn', 'nprocs=2', 'execname=./child', 'totspawns=1', 'spawnssofar=1', 'arg1=--n=3', 'argcnt=1',
      'preput_num=1', 'preput_key_0=PARENT_ROOT_PORT_NAME', 'preput_val_0=tag#0$port#5$', 'info_num=0', 'endcmd',
    ];
    for (const l of lines) {
      j.peers[0]!.write(l.slice(0, 3));
      j.peers[0]!.write(l.slice(3) + '\n');
    }
    await settle();
    expect(j.peers[0]!.takeLines()).toEqual(['cmd=spawn_result rc=0']);
    expect(j.spawns).toEqual([
      {
        parentKvsname: j.kvsname,
        parentRank: 0,
        protocol: 1,
        preput: [['PARENT_ROOT_PORT_NAME', 'tag#0$port#5$']],
        commands: [{ command: './child', args: ['--n=3'], maxprocs: 2, info: [] }],
      },
    ]);
    // the connection is back to normal commands
    expect(j.say(0, 'cmd=get_appnum')).toEqual(['cmd=appnum rc=0 appnum=0']);
  });

  it('replies spawn_result with rc=-1 when the spawn fails', async () => {
    const j = job({ proxies: [[0]], spawn: () => Promise.resolve({ ok: false, error: 'no such program' }) });
    j.say(0, 'cmd=init pmi_version=1 pmi_subversion=1');
    j.peers[0]!.write('mcmd=spawn\nnprocs=1\nexecname=./x\ntotspawns=1\nspawnssofar=1\nargcnt=0\nendcmd\n');
    await settle();
    expect(j.peers[0]!.takeLines()).toEqual(['cmd=spawn_result rc=-1 msg=no_such_program']);
  });

  it('exposes spawn preputs (initialKvs) to the children at once', () => {
    const service = new KvsService();
    service.addGroup('kvs_child', 1);
    const s = new PmiServer({ upstream: service.localUpstream(0, () => Promise.reject(new Error('no'))), events: recorder([]) });
    s.addGroup({
      kvsname: 'kvs_child', size: 1, processMapping: '(vector,(0,1,1))', universeSize: 1, localCount: 1,
      spawned: true, parentKvsname: 'kvs_parent', initialKvs: [['PARENT_ROOT_PORT_NAME', 'p#1']],
    });
    const p = new MemoryPmiPeer(s, 1, { rank: 0, kvsname: 'kvs_child', appnum: 0 });
    p.write('cmd=init pmi_version=1 pmi_subversion=1\ncmd=get kvsname=kvs_child key=PARENT_ROOT_PORT_NAME\n');
    expect(p.takeLines()).toEqual(['cmd=response_to_init rc=0 pmi_version=1 pmi_subversion=1', 'cmd=get_result rc=0 value=p#1']);
  });
});

describe('PMI_PORT identity (initack)', () => {
  function portJob() {
    const events: Ev[] = [];
    const service = new KvsService();
    service.addGroup('kvs_p', 1);
    const s = new PmiServer({ upstream: service.localUpstream(0, () => Promise.reject(new Error('x'))), events: recorder(events) });
    s.addGroup({ kvsname: 'kvs_p', size: 3, processMapping: '(vector,(0,1,3))', universeSize: 3, localCount: 3, spawned: false });
    s.setIdResolver((id): PmiRankInfo | undefined => (id >= 10 && id < 13 ? { rank: id - 10, kvsname: 'kvs_p', appnum: 1 } : undefined));
    return { s, events };
  }

  it('answers initack with the initack line and three set lines, in order, in one write', () => {
    const { s } = portJob();
    const sent: string[] = [];
    s.attach(1, { send: (d) => sent.push(d), close: () => {} });
    s.data(1, Buffer.from('cmd=initack pmiid=12\n'));
    expect(sent).toEqual(['cmd=initack rc=0 rank=2 size=3 appnum=1 debug=0\ncmd=set size=3\ncmd=set rank=2\ncmd=set debug=0\n']);
    s.data(1, Buffer.from('cmd=init pmi_version=1 pmi_subversion=1\ncmd=get_appnum\n'));
    expect(sent.slice(1)).toEqual(['cmd=response_to_init rc=0 pmi_version=1 pmi_subversion=1\n', 'cmd=appnum rc=0 appnum=1\n']);
    expect(s.state(2, 'kvs_p')).toBe('initialized');
  });

  it('closes connections with an unknown or reused PMI id, or no identity at all', () => {
    const { s, events } = portJob();
    const a = new MemoryPmiPeer(s, 1);
    a.write('cmd=initack pmiid=99\n');
    expect(a.closed).toBe(true);
    const b = new MemoryPmiPeer(s, 2);
    b.write('cmd=initack pmiid=10\n');
    expect(b.takeLines()[0]).toMatch(/^cmd=initack rc=0 rank=0 /);
    const c = new MemoryPmiPeer(s, 3);
    c.write('cmd=initack pmiid=10\n');
    expect(c.closed).toBe(true);
    const d = new MemoryPmiPeer(s, 4);
    d.write('cmd=init pmi_version=1 pmi_subversion=1\n');
    expect(d.closed).toBe(true);
    expect(d.takeLines()).toEqual([]);
    expect(events.map((e) => (e.e === 'protocolError' ? e.conn : -1))).toEqual([1, 3, 4]);
    expect(b.closed).toBe(false);
  });
});
