// Finds each cgroup hierarchy and our own cgroup in it from /proc/self/mountinfo and /proc/self/cgroup (pure).
// Paths are never hard-coded: cpu and cpuacct may be split or joined, v2 may be at /sys/fs/cgroup or .../unified.

export interface FoundHierarchy {
  version: 1 | 2;
  /** v1: controllers bound to the mount, sorted; v2: empty (read cgroup.controllers for those). */
  controllers: string[];
  mountPoint: string;
  /** Absolute path of our own cgroup directory under mountPoint. */
  ownDir: string;
  /** Our cgroup path as /proc/self/cgroup shows it. */
  ownPath: string;
}

/** The key naming a hierarchy in plans: 'v2' or the v1 controller list ("cpu,cpuacct"). */
export function hierarchyKey(h: { version: 1 | 2; controllers: string[] }): string {
  return h.version === 2 ? 'v2' : h.controllers.join(',');
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

interface CgroupMount {
  version: 1 | 2;
  controllers: string[];
  root: string;
  mountPoint: string;
}

export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const fstype = right[0];
    const root = left[3];
    const mountPoint = left[4];
    if (root === undefined || mountPoint === undefined) continue;
    if (fstype === 'cgroup2') {
      out.push({ version: 2, controllers: [], root: unescapeMount(root), mountPoint: unescapeMount(mountPoint) });
    } else if (fstype === 'cgroup') {
      const superOpts = (right[2] ?? '').split(',');
      // Named hierarchies (name=systemd) carry no controllers; we never use them.
      const controllers = superOpts.filter((o) => /^[a-z_]+$/.test(o) && o !== 'rw' && o !== 'ro' && !isMountFlag(o));
      if (controllers.length === 0) continue;
      out.push({ version: 1, controllers: controllers.sort(), root: unescapeMount(root), mountPoint: unescapeMount(mountPoint) });
    }
  }
  return out;
}

// Super options of a v1 cgroup mount that are not controller names.
function isMountFlag(o: string): boolean {
  return ['noprefix', 'clone_children', 'xattr', 'cpuset_v2_mode', 'favordynmods', 'nsdelegate', 'memory_localevents', 'memory_recursiveprot'].includes(o);
}

/** /proc/self/cgroup → controller-set key ('v2' or sorted "cpu,cpuacct") → our path. */
export function parseSelfCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, id, ctl, path] = m;
    if (id === '0' && ctl === '') out.set('v2', path ?? '/');
    else if (ctl !== undefined && ctl !== '' && !ctl.startsWith('name=')) {
      out.set(ctl.split(',').sort().join(','), path ?? '/');
    }
  }
  return out;
}

function joinCgroupPath(mountPoint: string, root: string, ownPath: string): string | undefined {
  const r = root === '/' ? '' : root.replace(/\/$/, '');
  if (r !== '' && ownPath !== r && !ownPath.startsWith(r + '/')) return undefined; // our cgroup is not visible here
  const rel = ownPath.slice(r.length).replace(/^\/+/, '');
  const base = mountPoint.replace(/\/$/, '');
  return rel === '' ? base : `${base}/${rel}`;
}

/** Every usable hierarchy with our own cgroup directory in it (first visible mount of each). */
export function findHierarchies(mountinfo: string, selfCgroup: string): FoundHierarchy[] {
  const own = parseSelfCgroup(selfCgroup);
  const seen = new Set<string>();
  const out: FoundHierarchy[] = [];
  for (const m of parseCgroupMounts(mountinfo)) {
    const key = hierarchyKey(m);
    if (seen.has(key)) continue;
    const ownPath = own.get(key);
    if (ownPath === undefined) continue;
    const ownDir = joinCgroupPath(m.mountPoint, m.root, ownPath);
    if (ownDir === undefined) continue;
    seen.add(key);
    out.push({ version: m.version, controllers: m.controllers, mountPoint: m.mountPoint.replace(/\/$/, '') || '/', ownDir, ownPath });
  }
  return out;
}
