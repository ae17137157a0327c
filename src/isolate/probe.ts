// Finds out once what this host and user can do (cgroup hierarchies we may write, namespaces that really
// mount), by trying each mechanism with a trivial payload; planIsolation decides from the result.
import { findHierarchies, type FoundHierarchy } from './cgroup-paths.js';
import { podArgv } from './pod-argv.js';
import type { Capabilities, HierarchyCaps, IsolationDeps, PodTool } from './types.js';

const PROBE_TIMEOUT_MS = 5000;

function errText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ?? (err instanceof Error ? err.message : String(e));
}

function readOr(deps: IsolationDeps, path: string, fallback: string): string {
  try {
    return deps.fs.readFile(path);
  } catch {
    return fallback;
  }
}

/** mkdir a throw-away child of our own cgroup: proves we may write here and shows which files a child gets. */
function probeHierarchy(deps: IsolationDeps, h: FoundHierarchy): HierarchyCaps {
  const caps: HierarchyCaps = {
    version: h.version,
    controllers: h.controllers,
    mountPoint: h.mountPoint,
    ownDir: h.ownDir,
    writable: false,
    childFiles: [],
  };
  if (h.version === 2) {
    caps.controllers = readOr(deps, `${h.ownDir}/cgroup.controllers`, '').split(/\s+/).filter(Boolean);
    caps.subtreeControl = readOr(deps, `${h.ownDir}/cgroup.subtree_control`, '').split(/\s+/).filter(Boolean);
    const procs = readOr(deps, `${h.ownDir}/cgroup.procs`, '').split(/\s+/).filter(Boolean);
    caps.ownOtherProcs = procs.filter((p) => Number(p) !== deps.pid).length;
    caps.ownIsRoot = h.ownDir === h.mountPoint;
  }
  const cpuset = (h.version === 2 ? caps.controllers : h.controllers).includes('cpuset');
  if (cpuset) {
    // what our own cgroup may use (effective: a v1 cgroup in cpuset_v2_mode, and v2, may list less than it asks)
    const [cpus, mems] = h.version === 2 ? ['cpuset.cpus.effective', 'cpuset.mems.effective'] : ['cpuset.effective_cpus', 'cpuset.effective_mems'];
    const read = (f: string, plain: string): string => readOr(deps, `${h.ownDir}/${f}`, '').trim() || readOr(deps, `${h.ownDir}/${plain}`, '').trim();
    caps.cpuset = { cpus: read(cpus, 'cpuset.cpus'), mems: read(mems, 'cpuset.mems') };
  }
  const dir = `${h.ownDir}/tsmpiexec-probe-${deps.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    deps.fs.mkdir(dir);
  } catch (e) {
    caps.reason = `mkdir in ${h.ownDir}: ${errText(e)}`;
    return caps;
  }
  try {
    caps.childFiles = deps.fs.readdir(dir).sort();
    caps.writable = true;
  } catch (e) {
    caps.reason = `readdir ${dir}: ${errText(e)}`;
  } finally {
    try {
      deps.fs.rmdir(dir);
    } catch {
      // An empty probe cgroup always goes away; if not, the next probe uses a fresh name anyway.
    }
  }
  return caps;
}

function probeBlockDevices(deps: IsolationDeps): string[] {
  const out: string[] = [];
  let names: string[] = [];
  try {
    names = deps.fs.readdir(deps.sysBlockRoot);
  } catch {
    return out;
  }
  for (const name of names) {
    const size = Number(readOr(deps, `${deps.sysBlockRoot}/${name}/size`, '0').trim());
    const dev = readOr(deps, `${deps.sysBlockRoot}/${name}/dev`, '').trim();
    if (size > 0 && /^\d+:\d+$/.test(dev)) out.push(dev);
  }
  return out.sort();
}

function firstLine(s: string): string {
  return s.trim().split('\n').pop()?.trim() ?? '';
}

/**
 * Root: the exact holder recipe with a trivial payload. Don't trust "unshare succeeded": mount is what fails.
 * On the real host (lazy) this is not run at all: the holder itself is that test, and setupIsolation falls back
 * to a TMPDIR with the holder's own error when it fails — one recipe run per job instead of two (start-up time).
 */
function probeMountNs(deps: IsolationDeps, tools: Capabilities['tools'], lazy: boolean): Capabilities['mountNs'] {
  if (tools.unshare === undefined) return { ok: false, reason: 'unshare(1) not found' };
  if (lazy) return { ok: true };
  const r = deps.runSync(
    [tools.unshare, '--mount', '--propagation', 'private', tools.sh, '-c', 'mount -t tmpfs -o size=1m tsmpiexec-probe /tmp && exit 0'],
    PROBE_TIMEOUT_MS,
  );
  if (r.status === 0) return { ok: true };
  return { ok: false, reason: firstLine(r.stderr) || r.error || `exit ${String(r.status)}` };
}

function probePod(deps: IsolationDeps, tools: Capabilities['tools']): Capabilities['pod'] {
  const reasons: string[] = [];
  for (const tool of ['bwrap', 'unshare'] as PodTool[]) {
    const argv = podArgv({ tool, tools, jobId: 'probe', uid: deps.uid, gid: deps.gid });
    if (argv === undefined) {
      reasons.push(`${tool}: not installed`);
      continue;
    }
    const r = deps.runSync([...argv, tools.sh, '-c', 'test -w /tmp && test "$(id -u)" = "$1"', 'probe', String(deps.uid)], PROBE_TIMEOUT_MS);
    if (r.status === 0) return { ok: true, tool };
    reasons.push(`${tool}: ${firstLine(r.stderr) || r.error || `exit ${String(r.status)}`}`);
  }
  return { ok: false, reason: reasons.join('; ') };
}

export function probeCapabilities(deps: IsolationDeps, lazyMountProbe = false): Capabilities {
  let hierarchies: HierarchyCaps[] = [];
  try {
    hierarchies = findHierarchies(deps.readMountinfo(), deps.readSelfCgroup()).map((h) => probeHierarchy(deps, h));
  } catch {
    hierarchies = []; // no /proc/self/mountinfo: no cgroups
  }
  const root = deps.uid === 0;
  const tools: Capabilities['tools'] = { sh: deps.which('sh') ?? '/bin/sh' };
  for (const t of ['unshare', 'nsenter', 'setpriv', 'bwrap'] as const) {
    const p = deps.which(t);
    if (p !== undefined) tools[t] = p;
  }
  const helper = deps.nativeHelper();
  if (helper !== undefined) tools.helper = helper;
  const inPod = deps.env.TSMPIEXEC_POD;
  const mountNs = root && inPod === undefined ? probeMountNs(deps, tools, lazyMountProbe) : { ok: false, reason: root ? 'already in a pod' : 'needs root' };
  const pod: Capabilities['pod'] =
    inPod !== undefined ? { ok: false, reason: 'already in a pod' } : mountNs.ok ? { ok: false, reason: 'not needed as root' } : probePod(deps, tools);
  return {
    pid: deps.pid,
    uid: deps.uid,
    gid: deps.gid,
    root,
    hierarchies,
    blockDevices: probeBlockDevices(deps),
    mountNs,
    pod,
    inPod,
    tools,
  };
}

let cached: Capabilities | undefined;

/** Probe once per process for the real host; injected deps (tests) always probe afresh. */
export function getCapabilities(deps: IsolationDeps, useCache: boolean): Capabilities {
  if (!useCache) return probeCapabilities(deps);
  cached ??= probeCapabilities(deps, true);
  return cached;
}
