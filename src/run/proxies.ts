// Which proxy each host gets: in-process for this host, launched (ssh; srun inside Slurm) for the others.
import { fileURLToPath } from 'node:url';
import type { JobRequest } from '../model/types.js';
import { isLocalHost } from '../hosts/local.js';
import type { BatchAllocation } from '../hosts/batch/types.js';
import type { Launcher } from '../launch/launcher.js';
import { SlurmLauncher } from '../launch/slurm.js';
import { SshLauncher } from '../launch/ssh.js';
import { localProxy, type ProxySpec } from './job.js';
import { Gate, RemoteProxy } from './remote-proxy.js';
import type { ProxyHandle } from './proxy-handle.js';

/** The command that starts this same tsmpiexec as a proxy on another host (shared file system). */
export function proxyArgv(req: JobRequest): string[] {
  if (req.proxyCmd) return [...req.proxyCmd, 'proxy'];
  return [process.execPath, fileURLToPath(new URL('../../bin/tsmpiexec.js', import.meta.url)), 'proxy'];
}

/** How remote proxies are started: over ssh, or as srun steps of the Slurm allocation `allocation`. */
export type RemoteLaunch = { kind: 'ssh' } | { kind: 'slurm'; jobId: string; allocation?: BatchAllocation };

function makeLauncher(req: JobRequest, how: RemoteLaunch): { launcher: Launcher; gate: Gate } {
  if (how.kind === 'ssh') return { launcher: new SshLauncher(req.launcherExec), gate: new Gate(8) }; // sshd's MaxStartups
  const cpus = how.allocation?.system === 'Slurm' ? how.allocation.cpusPerHost : undefined;
  const o = { jobId: how.jobId, ...(req.launcherExec ? { exec: req.launcherExec } : {}), ...(cpus ? { cpusPerHost: cpus } : {}) };
  return { launcher: new SlurmLauncher(o), gate: new Gate(16) }; // each srun is one step request to slurmctld
}

/** In-process proxies for this host, launched ones (ssh, or srun inside Slurm) for the others. */
export function remoteProxyFactory(
  req: JobRequest,
  names: Set<string>,
  env: NodeJS.ProcessEnv,
  how: RemoteLaunch = { kind: 'ssh' },
): (spec: ProxySpec) => ProxyHandle {
  const { launcher, gate } = makeLauncher(req, how);
  const argv = proxyArgv(req);
  return (spec) => {
    if (isLocalHost(spec.host, names)) return localProxy(spec);
    const envs: Array<Record<string, string>> = [];
    const envIndex = new Map<Record<string, string>, number>();
    const launches = spec.launches.map((l) => {
      // ranks of one segment share one environment object: send it once
      const base = l.baseEnv ?? l.env;
      let i = envIndex.get(base);
      if (i === undefined) {
        i = envs.length;
        envs.push(base);
        envIndex.set(base, i);
      }
      return { rank: l.rank, file: l.file, args: l.args, cwd: l.cwd, env: i, extra: l.extraEnv ?? {}, stdin: l.stdin };
    });
    return new RemoteProxy({
      index: spec.index,
      host: spec.host,
      launcher,
      proxyArgv: argv,
      env,
      assign: { t: 'assign', host: spec.host, jobId: spec.jobId, containment: spec.containment, group: spec.group, pmiTransport: spec.pmiTransport, appnums: spec.appnums, envs, launches, debug: req.verbose },
      events: spec.events,
      kvs: spec.kvs,
      spawn: async () => ({ ok: false, error: 'spawn is not supported yet' }),
      launchTimeoutMs: req.launchTimeoutSec * 1000,
      gate,
    });
  };
}

