// The `assign` message that hands a proxy process its ranks: segment environments are sent once and shared
// by reference, each rank adds only its own PMI variables.
import type { ToProxy, WireLaunch } from '../control/messages.js';
import type { ProxySpec } from './job.js';
import type { RankLaunch } from '../proxy/rank-process.js';

/** Launches for the wire: each distinct segment environment once, each rank with its own additions. */
export function encodeLaunches(list: readonly RankLaunch[]): { envs: Array<Record<string, string>>; launches: WireLaunch[] } {
  const envs: Array<Record<string, string>> = [];
  const envIndex = new Map<Record<string, string>, number>();
  const launches: WireLaunch[] = list.map((l) => {
    const base = l.baseEnv ?? l.env;
    let i = envIndex.get(base);
    if (i === undefined) {
      i = envs.length;
      envs.push(base);
      envIndex.set(base, i);
    }
    return {
      rank: l.rank,
      file: l.file,
      ...(l.argv0 !== undefined && l.argv0 !== l.file ? { argv0: l.argv0 } : {}),
      args: l.args,
      cwd: l.cwd,
      env: i,
      extra: l.extraEnv ?? {},
      stdin: l.stdin,
      ...(l.pmi ? { pmi: l.pmi } : {}),
    };
  });
  return { envs, launches };
}

/** The proxy side: back to RankLaunch. */
export function decodeLaunches(envs: ReadonlyArray<Record<string, string>>, launches: readonly WireLaunch[]): RankLaunch[] {
  return launches.map((l) => ({
    rank: l.rank,
    file: l.file,
    ...(typeof l.argv0 === 'string' ? { argv0: l.argv0 } : {}),
    args: l.args,
    cwd: l.cwd,
    env: { ...envs[l.env], ...l.extra },
    stdin: l.stdin,
    ...(l.pmi ? { pmi: l.pmi } : {}),
  }));
}

export function buildAssign(spec: ProxySpec, debug: boolean): Extract<ToProxy, { t: 'assign' }> {
  const { envs, launches } = encodeLaunches(spec.launches);
  return {
    t: 'assign',
    index: spec.index,
    host: spec.host,
    jobId: spec.jobId,
    containment: spec.containment,
    group: spec.group,
    pmiTransport: spec.pmiTransport,
    appnums: spec.appnums,
    envs,
    launches,
    debug,
  };
}
