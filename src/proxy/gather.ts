// A proxy's part in the barriers of the launch tree: it waits until its own ranks of a group entered the
// barrier and every child subtree that hosts ranks of the group sent its gathered entry, then sends ONE entry
// up with all their puts; the result comes down once, and it hands it to its own ranks and forwards it once to
// each child that entered. So each link carries one message each way per barrier (a few chunks when the KVS is
// larger than a frame), and the controller hears only from the first level of the tree.
//
// Which children take part in a group is the controller's to say (`plan`): it knows where each group's ranks
// run (spawned groups live on only some hosts). Entries that come before their plan wait for it. A proxy with
// no children needs no plan: it takes part with its own ranks only. No I/O here: `links` sends.
import { TreeMessageError, type Pair } from '../control/barrier-chunks.js';

export interface GatherLinks {
  /** the gathered entry of our subtree, for our parent (the controller or the proxy that launched us) */
  up(kvsname: string, proxies: number[], puts: Pair[]): void;
  /** the barrier's result, for each of `children` (called once per result, only when there are any) */
  down(children: number[], kvsname: string, puts: Pair[], error: string | undefined): void;
}

interface Epoch {
  own?: { puts: Pair[]; resolve(pairs: Pair[]): void; reject(e: Error): void };
  children: Map<number, { proxies: number[]; puts: Pair[] }>;
}

interface Group {
  plan?: { self: boolean; children: number[] };
  open: Epoch;
  /** epochs sent up, oldest first, each waiting for its result */
  sent: Epoch[];
}

const newEpoch = (): Epoch => ({ children: new Map() });

export class BarrierGather {
  private readonly groups = new Map<string, Group>();

  /** `index`: this proxy's index in the job; `leaf`: it launched no proxies (no plans needed). */
  constructor(
    private readonly index: number,
    private readonly leaf: boolean,
    private readonly links: GatherLinks,
  ) {}

  private group(kvsname: string): Group {
    let g = this.groups.get(kvsname);
    if (!g) {
      g = { open: newEpoch(), sent: [] };
      this.groups.set(kvsname, g);
    }
    return g;
  }

  /** Who enters the barriers of `kvsname` here: our own ranks (`self`) and these children. */
  plan(kvsname: string, self: boolean, children: readonly number[]): void {
    const g = this.group(kvsname);
    g.plan = { self, children: [...children] };
    this.maybeSend(kvsname, g);
  }

  /** All of our own ranks of `kvsname` entered: resolves with the epoch's pairs once the barrier completed. */
  enterOwn(kvsname: string, puts: Pair[]): Promise<Pair[]> {
    const g = this.group(kvsname);
    if (g.open.own) return Promise.reject(new Error(`the ranks of ${kvsname} here entered the barrier twice`));
    if (g.plan && !g.plan.self) return Promise.reject(new Error(`this proxy has no ranks of ${kvsname} in its barrier plan`));
    const p = new Promise<Pair[]>((resolve, reject) => (g.open.own = { puts, resolve, reject }));
    this.maybeSend(kvsname, g);
    return p;
  }

  /** Child `child` sent its subtree's gathered entry. Throws TreeMessageError for an entry that cannot be. */
  enterChild(child: number, kvsname: string, proxies: number[], puts: Pair[]): void {
    const g = this.group(kvsname);
    if (g.open.children.has(child)) throw new TreeMessageError(`proxy ${child} entered the barrier of ${kvsname} twice`);
    if (g.plan && !g.plan.children.includes(child)) throw new TreeMessageError(`proxy ${child} entered the barrier of ${kvsname}, which it has no ranks of`);
    g.open.children.set(child, { proxies, puts });
    this.maybeSend(kvsname, g);
  }

  /** Our parent's result for the oldest epoch of `kvsname` we sent up. Throws TreeMessageError if none waits. */
  result(kvsname: string, puts: Pair[], error: string | undefined): void {
    const ep = this.groups.get(kvsname)?.sent.shift();
    if (!ep) throw new TreeMessageError(`a barrier result for ${kvsname} that nothing waits for`);
    if (ep.children.size > 0) this.links.down([...ep.children.keys()], kvsname, puts, error);
    if (!ep.own) return;
    if (error === undefined) ep.own.resolve(puts);
    else ep.own.reject(new Error(error));
  }

  /** Epochs of groups still open or waiting for a result (diagnostics and tests). */
  pending(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.sent.length + (g.open.own || g.open.children.size > 0 ? 1 : 0);
    return n;
  }

  private maybeSend(kvsname: string, g: Group): void {
    const plan = g.plan ?? (this.leaf ? { self: true, children: [] } : undefined);
    if (!plan) return;
    const ep = g.open;
    if (plan.self && !ep.own) return;
    if (!plan.self && plan.children.length === 0) return;
    for (const c of plan.children) if (!ep.children.has(c)) return;
    g.open = newEpoch();
    g.sent.push(ep);
    const proxies: number[] = ep.own ? [this.index] : [];
    const lists: Pair[][] = ep.own ? [ep.own.puts] : [];
    for (const c of plan.children) {
      const e = ep.children.get(c) as { proxies: number[]; puts: Pair[] };
      for (const i of e.proxies) proxies.push(i);
      lists.push(e.puts);
    }
    this.links.up(kvsname, proxies, lists.length === 1 ? (lists[0] as Pair[]) : ([] as Pair[]).concat(...lists));
  }
}
