// This host's proxy for an unprivileged user whose host allows user namespaces: a separate proxy process
// started inside a pod (private /tmp and /dev/shm, PID namespace), driven over its stdio like a remote one.
// Costs one more Node start-up; root needs none of this (cgroups and a joinable mount namespace).
import fs from 'node:fs';
import { podCommand } from '../isolate/index.js';
import { namedPaths, scratchTmpDir } from '../isolate/keep-visible.js';
import { binPath } from '../util/package-root.js';
import { PodLauncher } from '../launch/pod.js';
import { buildAssign } from './assign.js';
import { spawnUnsupported, type ProxySpec } from './job.js';
import type { ProxyHandle } from './proxy-handle.js';
import { Gate, RemoteProxy } from './remote-proxy.js';

/** The pod prefix for this job on this host, or undefined when none is needed or possible. */
export function podPrefix(spec: ProxySpec): string[] | undefined {
  if (spec.containment.mode === 'off' || spec.containment.hostTmp === true || process.getuid?.() === 0) return undefined;
  return podCommand({
    jobId: podJobId(spec),
    host: spec.host,
    mode: spec.containment.mode,
    limits: { memPerRankBytes: spec.containment.memPerRankBytes, pidsPerRank: spec.containment.pidsPerRank },
    ranks: spec.launches.map((l) => l.rank),
    inBatch: spec.containment.inBatch,
    keepVisible: namedPaths(spec.launches, fs.existsSync),
    ...(process.env._CONDOR_SCRATCH_DIR ? { scratchDir: process.env._CONDOR_SCRATCH_DIR } : {}),
  });
}

export function podProxy(spec: ProxySpec, prefix: string[], env: Record<string, string | undefined>): ProxyHandle {
  const bin = binPath();
  const proxy = new RemoteProxy({
    index: spec.index,
    host: spec.host,
    launcher: new PodLauncher(prefix),
    proxyArgv: [process.execPath, bin, 'proxy'],
    env,
    assign: buildAssign(spec, false),
    events: spec.events,
    kvs: spec.kvs,
    spawn: spec.spawn ?? spawnUnsupported,
    launchTimeoutMs: 60_000,
    gate: new Gate(8),
  });
  // A scratch-backed /tmp was made here, before the pod existed: it goes when the pod proxy is gone.
  const scratch = process.env._CONDOR_SCRATCH_DIR;
  if (scratch) void proxy.gone.then(() => fs.rmSync(scratchTmpDir(scratch, podJobId(spec)), { recursive: true, force: true }));
  return proxy;
}

function podJobId(spec: ProxySpec): string {
  return `p${process.pid}-${spec.jobId}`;
}
