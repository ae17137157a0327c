// Placement: which rank runs on which host. Pure; `--dry-run` prints its result.
// Hydra's rules: a host without a slot count has one slot and ranks wrap round-robin; `host:N` fills N
// consecutive ranks (block-wise) before moving on; `-ppn N` gives every host N slots. When all slots are
// used, placement wraps around to the first host again (oversubscription, as Hydra does silently).
import type { HostSource, HostSpec, JobPlan, JobRequest, ProxyPlan, RankPlan } from '../model/types.js';
import { ERROR_CODES, TsmpiError, usageError } from '../util/errors.js';
import { processMapping } from './mapping.js';

/**
 * The largest job tsmpiexec plans: about the flat-MPI size of today's largest machines. Far beyond it the plan
 * alone would exhaust the launcher's memory (-n 2147483647 used to abort in V8 after 40 s and 5 GB).
 */
export const MAX_JOB_RANKS = 1 << 20;

export interface PlaceInput {
  request: Pick<JobRequest, 'segments' | 'ppn'>;
  hosts: HostSpec[];
  hostSource: HostSource;
  kvsname: string;
  /** Ranks to run when no segment gives -n (e.g. the allocation's task count). */
  defaultNp: number;
}

/**
 * The slot sequence one pass over the host list yields: host index per slot. With `limit`, it stops after that
 * many slots: placing `limit` ranks never looks further, and a huge -ppn or slot count is not materialized.
 */
export function slotSequence(hosts: readonly HostSpec[], ppn: number | undefined, limit = Infinity): number[] {
  const seq: number[] = [];
  for (let i = 0; i < hosts.length && seq.length < limit; i++) {
    const n = Math.min(ppn ?? hosts[i]?.slots ?? 1, limit - seq.length);
    for (let k = 0; k < n; k++) seq.push(i);
  }
  return seq;
}

export function place(input: PlaceInput): JobPlan {
  const { request, hosts } = input;
  if (hosts.length === 0) throw usageError('no hosts to run on', 'empty host list', 'give -hosts NAME or a host file with at least one host');
  const segs = request.segments;
  // Segments without -n: a lone segment takes the default; in MPMD each unspecified segment takes one rank.
  const counts = segs.map((s) => s.np ?? (segs.length === 1 ? input.defaultNp : 1));
  const total = counts.reduce((a, b) => a + b, 0);
  if (total > MAX_JOB_RANKS) {
    throw new TsmpiError(ERROR_CODES.BAD_VALUE, `a job of ${total} ranks is larger than tsmpiexec can start (at most ${MAX_JOB_RANKS})`, {
      culprit: segs.some((sg) => sg.np === undefined) ? 'the slot counts of the hosts' : segs.length === 1 ? '-n' : 'the -n of the segments',
      hint: `ask for at most ${MAX_JOB_RANKS} ranks with -n`,
      exitStatus: 2,
    });
  }
  const seq = slotSequence(hosts, request.ppn, Math.max(total, 1));

  const ranks: RankPlan[] = [];
  const hostOfRank: number[] = [];
  let rank = 0;
  segs.forEach((seg, si) => {
    const n = counts[si] ?? 1;
    for (let k = 0; k < n; k++, rank++) {
      const hostIndex = seq[rank % seq.length] ?? 0;
      hostOfRank.push(hostIndex);
      ranks.push({
        rank,
        proxy: -1,
        host: hosts[hostIndex]?.name ?? '',
        localRank: 0,
        segment: si,
        appnum: si,
        program: seg.program,
        args: seg.args,
      });
    }
  });

  // Proxies: hosts with at least one rank, in host-list order; node ids follow that order.
  const proxyOfHost = new Map<number, number>();
  const proxies: ProxyPlan[] = [];
  const used = new Set(hostOfRank);
  hosts.forEach((h, i) => {
    if (used.has(i)) {
      proxyOfHost.set(i, proxies.length);
      proxies.push({ index: proxies.length, host: h.name, ranks: [] });
    }
  });
  for (const r of ranks) {
    const p = proxyOfHost.get(hostOfRank[r.rank] ?? 0) ?? 0;
    const proxy = proxies[p];
    if (!proxy) continue;
    r.proxy = p;
    r.localRank = proxy.ranks.length;
    proxy.ranks.push(r.rank);
  }
  return {
    size: ranks.length,
    kvsname: input.kvsname,
    proxies,
    ranks,
    processMapping: processMapping(ranks.map((r) => r.proxy)),
    hostSource: input.hostSource,
  };
}
