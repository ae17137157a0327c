// The `assign` message that hands a proxy process its ranks: segment environments are sent once and shared
// by reference, each rank adds only its own PMI variables.
import type { ToProxy, WireLaunch } from '../control/messages.js';
import type { ProxySpec } from './job.js';

export function buildAssign(spec: ProxySpec, debug: boolean): Extract<ToProxy, { t: 'assign' }> {
  const envs: Array<Record<string, string>> = [];
  const envIndex = new Map<Record<string, string>, number>();
  const launches: WireLaunch[] = spec.launches.map((l) => {
    const base = l.baseEnv ?? l.env;
    let i = envIndex.get(base);
    if (i === undefined) {
      i = envs.length;
      envs.push(base);
      envIndex.set(base, i);
    }
    return { rank: l.rank, file: l.file, args: l.args, cwd: l.cwd, env: i, extra: l.extraEnv ?? {}, stdin: l.stdin };
  });
  return {
    t: 'assign',
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
