// Which proxy each host gets: in-process for this host, launched (ssh; srun inside Slurm) for the others.
import { binPath } from '../util/package-root.js';
import type { JobRequest } from '../model/types.js';
import { isLocalHost } from '../hosts/local.js';
import type { BatchAllocation } from '../hosts/batch/types.js';
import type { Launcher } from '../launch/launcher.js';
import { SlurmLauncher } from '../launch/slurm.js';
import { SshLauncher } from '../launch/ssh.js';
import { localProxy, spawnUnsupported, type ProxySpec } from './job.js';
import { Gate, RemoteProxy, type ChannelTraffic, type ProxyRegistry } from './remote-proxy.js';
import { buildAssign } from './assign.js';
import { subtreeOf, topOf, treeLayout } from './tree.js';
import type { ProxyHandle } from './proxy-handle.js';

/** The command that starts this same tsmpiexec as a proxy on another host (shared file system). */
export function proxyArgv(req: JobRequest): string[] {
  if (req.proxyCmd) return [...req.proxyCmd, 'proxy'];
  return [process.execPath, binPath(), 'proxy'];
}

/**
 * How remote proxies are started: over ssh, or as srun steps of the Slurm allocation `allocation`. An ssh launch
 * may name a stand-in for ssh (bench/scale-model.mjs: simulated hosts in memory).
 */
export type RemoteLaunch = { kind: 'ssh'; launcher?: Launcher; gate?: Gate } | { kind: 'slurm'; jobId: string; allocation?: BatchAllocation };

function makeLauncher(req: JobRequest, how: RemoteLaunch): { launcher: Launcher; gate: Gate } {
  if (how.kind === 'ssh') return { launcher: how.launcher ?? new SshLauncher(req.launcherExec), gate: how.gate ?? new Gate(8) }; // sshd's MaxStartups
  const cpus = how.allocation?.system === 'Slurm' ? how.allocation.cpusPerHost : undefined;
  const o = { jobId: how.jobId, ...(req.launcherExec ? { exec: req.launcherExec } : {}), ...(cpus ? { cpusPerHost: cpus } : {}) };
  return { launcher: new SlurmLauncher(o), gate: new Gate(16) }; // each srun is one step request to slurmctld
}

/**
 * In-process proxies for this host, launched ones (ssh, or srun inside Slurm) for the others. With ssh and
 * more remote hosts than --tree-width, the remote proxies form a launch tree (tree.ts): the controller starts
 * the first level, each of those starts its children, and frames travel routed through the tree.
 */
export function remoteProxyFactory(
  req: JobRequest,
  names: Set<string>,
  env: NodeJS.ProcessEnv,
  how: RemoteLaunch = { kind: 'ssh' },
  /** every proxy's host, by index (the plan's), to lay out the tree */
  hosts: readonly string[] = [],
  /** counts the bytes on the controller's channels to its remote proxies */
  traffic?: ChannelTraffic,
): (spec: ProxySpec) => ProxyHandle {
  const { launcher, gate } = makeLauncher(req, how);
  const argv = proxyArgv(req);
  // Inside a Slurm job our node's name need not be our host name (NodeName=node001 on host ip-10-0-0-1):
  // slurmd says which node we are on, so that node's ranks stay in-process instead of going through srun.
  const local = how.kind === 'slurm' && env.SLURMD_NODENAME ? new Set([...names, env.SLURMD_NODENAME]) : names;
  const remote = hosts.map((h, i) => ({ h, i })).filter(({ h }) => !isLocalHost(h, local)).map(({ i }) => i);
  const useTree = how.kind === 'ssh' && !req.noTree && remote.length > req.treeWidth;
  const tree = useTree ? treeLayout(remote, req.treeWidth) : undefined;
  const registry: ProxyRegistry = new Map();
  return (spec) => {
    if (isLocalHost(spec.host, local)) return localProxy(spec);
    const assign = buildAssign(spec, req.verbose);
    const node = tree?.get(spec.index);
    if (tree && node && node.children.length > 0) {
      assign.tree = {
        children: node.children.map((c) => ({ index: c, host: hosts[c] ?? '', subtree: subtreeOf(tree, c) })),
        ...(req.launcherExec ? { launcherExec: req.launcherExec } : {}),
        proxyArgv: argv,
        launchTimeoutMs: req.launchTimeoutSec * 1000,
      };
    }
    const top = tree && node && node.parent !== undefined ? registry.get(topOf(tree, spec.index)) : undefined;
    return new RemoteProxy({
      index: spec.index,
      host: spec.host,
      launcher,
      ...(top && node ? { routed: { top, depth: node.depth } } : {}),
      registry,
      proxyArgv: argv,
      env,
      assign,
      events: spec.events,
      kvs: spec.kvs,
      spawn: spec.spawn ?? spawnUnsupported,
      launchTimeoutMs: req.launchTimeoutSec * 1000,
      gate,
      ...(traffic ? { traffic } : {}),
    });
  };
}
