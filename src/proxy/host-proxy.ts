// The per-host proxy: starts this host's ranks, serves their PMI connections (one PmiServer per host), relays
// their output and exits upward, forwards signals and stdin. It knows nothing about where its controller is:
// on one host the controller calls it directly; on many hosts a control channel sits in between.
import type { Socket } from 'node:net';
import type { RankOutcome } from '../model/types.js';
import { PmiServer, type PmiGroupInfo, type PmiUpstream } from '../pmi/server.js';
import { RankProcess, type RankLaunch } from './rank-process.js';
import { GroupReaper } from './reaper.js';

export type PmiState = 'none' | 'initialized' | 'finalized';

export interface HostProxyEvents {
  /** Rank output; return false to ask the proxy to pause until resumeOutput(). */
  output(rank: number, stream: 'stdout' | 'stderr', data: Buffer): boolean;
  outputEnd(rank: number, stream: 'stdout' | 'stderr'): void;
  started(rank: number, pid: number): void;
  exited(rank: number, outcome: RankOutcome): void;
  /** The rank's process is gone and its PMI conversation is complete: pmi tells whether it finalized. */
  settled(rank: number, outcome: RankOutcome, pmi: PmiState): void;
  aborted(rank: number | undefined, code: number, message: string): void;
  pmiError(rank: number | undefined, message: string): void;
}

export interface HostProxyOptions {
  host: string;
  group: PmiGroupInfo;
  /** How ranks reach the PMI server: an inherited socketpair (PMI_FD, default) or PMI_PORT over TCP / UNIX. */
  pmiTransport?: 'fd' | 'tcp' | 'unix';
  /** rank → appnum */
  appnum(rank: number): number;
  launches: RankLaunch[];
  upstream: PmiUpstream;
  events: HostProxyEvents;
  debug?: (line: string) => void;
}

export class HostProxy {
  readonly host: string;
  private readonly ranks = new Map<number, RankProcess>();
  private readonly pmi: PmiServer;
  private readonly o: HostProxyOptions;
  private paused = false;
  private reaper: GroupReaper | undefined;

  constructor(o: HostProxyOptions) {
    this.o = o;
    this.host = o.host;
    const ev = o.events;
    this.pmi = new PmiServer({
      upstream: o.upstream,
      debug: o.debug,
      events: {
        initialized: () => {},
        finalized: () => {},
        aborted: (r, code, message) => ev.aborted(r?.rank, code, message),
        protocolError: (connId, message) => ev.pmiError(connId, message),
      },
    });
    this.pmi.addGroup(o.group);
  }

  /** Spawn every rank, in rank order. */
  start(): void {
    const { events: ev, group } = this.o;
    this.reaper = new GroupReaper();
    for (const l of this.o.launches) {
      const rank = l.rank;
      const rp: RankProcess = new RankProcess(l, {
        stdout: (d) => this.relay(rank, 'stdout', d),
        stderr: (d) => this.relay(rank, 'stderr', d),
        streamEnd: (s) => ev.outputEnd(rank, s),
        exited: (o) => ev.exited(rank, o),
        settled: () => {
          this.pmi.detach(rank);
          ev.settled(rank, rp.outcome ?? { kind: 'exited', code: 0 }, this.pmi.state(rank, group.kvsname));
        },
      });
      this.ranks.set(rank, rp);
      const sock = rp.start();
      if (rp.pid !== undefined) {
        this.reaper.add(rp.pid);
        ev.started(rank, rp.pid);
      }
      if (sock) this.attachPmi(rank, sock);
    }
  }

  private attachPmi(rank: number, sock: Socket): void {
    const id = rank;
    this.pmi.attach(
      id,
      {
        send: (data) => {
          if (!sock.destroyed) sock.write(data);
        },
        close: () => sock.destroy(),
      },
      { rank, kvsname: this.o.group.kvsname, appnum: this.o.appnum(rank) },
    );
    sock.on('data', (d: Buffer) => this.pmi.data(id, d));
    sock.on('error', () => {
      /* the rank vanished; 'close' follows */
    });
    sock.once('close', () => this.pmi.detach(id));
  }

  private relay(rank: number, stream: 'stdout' | 'stderr', data: Buffer): void {
    if (!this.o.events.output(rank, stream, data) && !this.paused) {
      this.paused = true;
      for (const r of this.ranks.values()) r.pauseOutput();
    }
  }

  resumeOutput(): void {
    if (!this.paused) return;
    this.paused = false;
    for (const r of this.ranks.values()) r.resumeOutput();
  }

  /** Signal every rank that is still running (its process group). */
  signal(sig: NodeJS.Signals): void {
    for (const r of this.ranks.values()) if (r.running) r.signal(sig);
  }

  /** Kill every rank's process group, including leftovers of ranks that already exited. */
  killAll(): void {
    for (const r of this.ranks.values()) r.signal('SIGKILL');
  }

  stdinOf(rank: number): import('node:stream').Writable | undefined {
    return this.ranks.get(rank)?.stdin;
  }

  destroyStreams(): void {
    for (const r of this.ranks.values()) r.destroyStreams();
  }

  /** The job is over here: every group was killed; dismiss the reaper. */
  async close(): Promise<void> {
    this.reaper?.close();
  }

  pidOf(rank: number): number | undefined {
    return this.ranks.get(rank)?.pid;
  }
}
