// A simulated host behind a real proxy (src/proxy/main.ts): what IsolatedProxy does there, minus processes. Its
// ranks are scripted PMI-1 clients talking to the real PmiServer (src/pmi/server.ts) over in-memory
// connections: the conversation of MPICH's `simple` PMI client in MPI_Init with a UCX address exchange
// (init, get_maxes, get_appnum, get_my_kvsname, put of this rank's address, barrier, gets of peers' addresses),
// then MPI_Finalize's barrier and finalize. Every reply is checked; a wrong one fails the run.
import { PmiServer } from '../../dist/pmi/server.js';

/** The address a rank puts: `bytes` hex characters, different for every rank and checkable by its peers. */
export function addressOf(rank, bytes) {
  const seed = `ucx-addr-${rank}-`;
  return seed.padEnd(bytes, (rank % 16).toString(16)).slice(0, bytes).replace(/[^0-9a-z-]/g, 'x');
}

function parseV1(line) {
  const o = {};
  for (const w of line.split(' ')) {
    const eq = w.indexOf('=');
    if (eq > 0) o[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return o;
}

/** One rank: a PMI-1 client driven by the replies it gets (one request in flight, as the real client). */
class SimRank {
  constructor(host, launch, id) {
    this.host = host;
    this.rank = launch.rank;
    this.id = id;
    this.kvsname = host.o.group.kvsname;
    this.size = host.o.group.size;
    this.step = 0;
    this.buf = '';
    this.done = false;
    const p = host.params;
    this.peers = [];
    for (let k = 1; k <= Math.min(p.gets, this.size - 1); k++) this.peers.push((this.rank + k) % this.size);
    // the script: [request line, what to check in the reply]
    const K = this.kvsname;
    this.script = [
      ['cmd=init pmi_version=1 pmi_subversion=1', (r) => r.cmd === 'response_to_init' && r.rc === '0'],
      ['cmd=get_maxes', (r) => r.cmd === 'maxes' && r.rc === '0'],
      ['cmd=get_appnum', (r) => r.cmd === 'appnum'],
      ['cmd=get_my_kvsname', (r) => r.cmd === 'my_kvsname' && r.kvsname === K],
      [`cmd=put kvsname=${K} key=bc-${this.rank} value=${addressOf(this.rank, p.valueBytes)}`, (r) => r.cmd === 'put_result' && r.rc === '0'],
      ['cmd=barrier_in', (r) => r.cmd === 'barrier_out' && r.rc === '0', 'barrier1'],
      ...this.peers.map((q) => [`cmd=get kvsname=${K} key=bc-${q}`, (r) => r.cmd === 'get_result' && r.rc === '0' && r.value === addressOf(q, p.valueBytes)]),
      ['cmd=barrier_in', (r) => r.cmd === 'barrier_out' && r.rc === '0'],
      ['cmd=finalize', (r) => r.cmd === 'finalize_ack'],
    ];
  }

  start() {
    const { pmi } = this.host;
    pmi.attach(this.id, { send: (data) => this.reply(data), close: () => this.closed() }, { rank: this.rank, kvsname: this.kvsname, appnum: this.host.o.appnum(this.rank) });
    this.next();
  }

  next() {
    const s = this.script[this.step];
    if (!s) {
      this.exit({ kind: 'exited', code: 0 });
      return;
    }
    const line = Buffer.from(`${s[0]}\n`);
    this.host.model.pmiRequests++;
    setImmediate(() => this.host.pmi.data(this.id, line));
  }

  reply(data) {
    this.buf += data;
    let nl;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const s = this.script[this.step];
      if (!s || this.done) continue;
      if (!s[1](parseV1(line))) {
        this.host.model.bad(`rank ${this.rank}: unexpected reply to "${s[0].slice(0, 40)}": ${line.slice(0, 120)}`);
        this.exit({ kind: 'exited', code: 1 });
        return;
      }
      if (s[2] === 'barrier1') this.host.model.firstBarrierOut();
      this.step++;
      this.next();
    }
  }

  closed() {
    if (!this.done) this.exit({ kind: 'exited', code: 1 });
  }

  exit(outcome) {
    if (this.done) return;
    this.done = true;
    const { host } = this;
    host.pmi.detach(this.id);
    const ev = host.o.events;
    ev.outputEnd(this.rank, 'stdout');
    ev.outputEnd(this.rank, 'stderr');
    ev.exited(this.rank, outcome);
    ev.settled(this.rank, outcome, host.pmi.state(this.rank, this.kvsname));
  }
}

/** The host side a proxy drives (the surface proxy/main.ts's HostSide names). */
export class SimHost {
  constructor(o, _containment, params, model) {
    this.o = o;
    this.host = o.host;
    this.params = params;
    this.model = model;
    this.ranks = [];
    this.pmi = new PmiServer({
      upstream: o.upstream,
      events: {
        initialized: () => {},
        finalized: () => {},
        aborted: (r, code, message) => o.events.aborted(r?.rank, code, message),
        // the job's KVS limits (--kvs-max-keys, --kvs-max-bytes), where the code has them
        limitReached: (r, over) => {
          model.bad(`rank ${r.rank}: over the KVS limit ${over.limit}`);
          o.events.pmiLimit?.(r.rank, over);
        },
        refused: (_r, message) => o.events.notice?.(message),
        protocolError: (_connId, message, rank) => {
          model.bad(`PMI protocol error: ${message}`);
          o.events.pmiError(rank?.rank, message);
        },
      },
    });
    this.pmi.addGroup(o.group);
  }

  start() {
    for (const l of this.o.launches) {
      const r = new SimRank(this, l, l.rank);
      this.ranks.push(r);
      this.o.events.started(l.rank, 100000 + l.rank);
      r.start();
    }
  }

  ready() {
    return Promise.resolve();
  }

  stdinOf() {
    return undefined;
  }

  addRanks() {
    return Promise.resolve('the scale model does not simulate MPI_Comm_spawn');
  }

  signal(sig) {
    if (sig === 'SIGKILL' || sig === 'SIGTERM') this.killAll();
  }

  killAll() {
    for (const r of this.ranks) if (!r.done) r.exit({ kind: 'signaled', signal: 'SIGKILL' });
  }

  resumeOutput() {}
  destroyStreams() {}
  close() {
    return Promise.resolve();
  }
  usage() {
    return undefined;
  }
}
