// The controller side of PMI: completes each group's barrier once every proxy of the group has entered, hands
// all of them the epoch's puts (hydra's keyval_cache broadcast), and keeps the one name-service table shared by
// every group of the job. No I/O: proxies reach it in-process via localUpstream() or through a channel that
// calls enter()/publish()/... on their behalf. In a launch tree one entry speaks for a whole subtree
// (enterMany): the proxies below a first-level proxy gathered their entries on the way up.
import type { SpawnRequest } from './spawn.js';
import type { PmiUpstream, SpawnResult } from './types.js';

interface Epoch {
  entered: Set<number>;
  puts: Array<[string, string]>;
  waiters: Array<{ resolve: (pairs: Array<[string, string]>) => void }>;
}

interface GroupBarrier {
  proxyCount: number;
  epoch: Epoch;
  /** Completed epochs, for diagnostics. */
  completed: number;
}

function newEpoch(): Epoch {
  return { entered: new Set(), puts: [], waiters: [] };
}

export class KvsService {
  private readonly groups = new Map<string, GroupBarrier>();
  private readonly names = new Map<string, string>();

  /** `onBarrier` is told of every completed barrier (the controller times the first one for --timing). */
  constructor(private readonly onBarrier?: (kvsname: string) => void) {}

  /** Register a group served by `proxyCount` proxies (those that host at least one of its ranks). */
  addGroup(kvsname: string, proxyCount: number): void {
    if (this.groups.has(kvsname)) throw new Error(`KVS group ${kvsname} added twice`);
    if (!Number.isInteger(proxyCount) || proxyCount < 1) throw new Error(`KVS group ${kvsname}: bad proxy count ${proxyCount}`);
    this.groups.set(kvsname, { proxyCount, epoch: newEpoch(), completed: 0 });
  }

  /**
   * A proxy's ranks of `kvsname` all entered the barrier. Resolves, for every proxy of the group, once all
   * proxyCount proxies entered, with every pair put in this epoch (in the order the proxies entered).
   * Rejects for an unknown group or a proxy entering the same epoch twice.
   */
  enter(kvsname: string, proxyId: number, puts: ReadonlyArray<readonly [string, string]>): Promise<Array<[string, string]>> {
    return this.enterMany(kvsname, [proxyId], puts);
  }

  /**
   * Several proxies entered at once (a subtree's gathered entry), with the puts of all of them. Resolves once,
   * as enter() does; rejects, entering none of them, when one of them already entered this epoch.
   */
  enterMany(kvsname: string, proxyIds: readonly number[], puts: ReadonlyArray<readonly [string, string]>): Promise<Array<[string, string]>> {
    const g = this.groups.get(kvsname);
    if (!g) return Promise.reject(new Error(`barrier for unknown KVS group ${kvsname}`));
    const ep = g.epoch;
    const seen = new Set<number>();
    const twice = proxyIds.find((id) => ep.entered.has(id) || seen.size === seen.add(id).size);
    if (twice !== undefined) {
      return Promise.reject(new Error(`proxy ${twice} entered the barrier of ${kvsname} twice`));
    }
    if (proxyIds.length === 0) return Promise.reject(new Error(`a barrier entry of ${kvsname} for no proxy`));
    for (const id of proxyIds) ep.entered.add(id);
    for (const [k, v] of puts) ep.puts.push([k, v]);
    const p = new Promise<Array<[string, string]>>((resolve) => ep.waiters.push({ resolve }));
    if (ep.entered.size >= g.proxyCount) {
      g.epoch = newEpoch();
      g.completed++;
      this.onBarrier?.(kvsname);
      for (const w of ep.waiters) w.resolve(ep.puts);
    }
    return p;
  }

  /** How many barriers of the group have completed (undefined: unknown group). */
  barriersCompleted(kvsname: string): number | undefined {
    return this.groups.get(kvsname)?.completed;
  }

  /** false: the service is already published. */
  publish(service: string, port: string): boolean {
    if (this.names.has(service)) return false;
    this.names.set(service, port);
    return true;
  }

  /** false: not found. */
  unpublish(service: string): boolean {
    return this.names.delete(service);
  }

  lookup(service: string): string | undefined {
    return this.names.get(service);
  }

  /** A PmiUpstream for a proxy running in this process. */
  localUpstream(proxyId: number, spawnFn: (req: SpawnRequest) => Promise<SpawnResult>): PmiUpstream {
    return {
      barrier: (kvsname, puts) => this.enter(kvsname, proxyId, puts),
      publish: (service, port) => Promise.resolve(this.publish(service, port)),
      unpublish: (service) => Promise.resolve(this.unpublish(service)),
      lookup: (service) => Promise.resolve(this.lookup(service)),
      spawn: (req) => spawnFn(req),
    };
  }
}
