// Who is on the other end of a loopback TCP connection: the uid of the CLIENT's socket, read from the kernel's
// /proc/net/tcp (and tcp6) tables before a single byte of the connection is read (isolation.md §3.1 D, §3.3).
//
// The row we want is the client's own socket: its local_address is the peer's address:port as we see it, its
// rem_address is our accepted socket's address:port. (Our accepted socket has the mirror-image row, owned by us;
// matching it instead would accept everyone.) Verified traps this module encodes:
//  - only st=01 (ESTABLISHED) with inode≠0 counts: a closed client leaves a TIME_WAIT row with uid 0 and inode 0,
//    which would "match" a root-owned job;
//  - a reader inside a user namespace sees every unmapped uid as the overflow uid (65534), so that uid is never
//    accepted, unless we really are that uid in the initial user namespace;
//  - an IPv4 client's row is in /proc/net/tcp, but an AF_INET6 client reaching our 127.0.0.1 listener through a
//    v4-mapped address (::ffff:127.0.0.1) has its row in /proc/net/tcp6;
//  - anything unreadable or unparsable refuses the connection (fail closed).
// The uid column is the socket creator's fsuid, fixed at socket creation; an unprivileged process cannot change it.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';

export interface Endpoint {
  address: string;
  port: number;
}

export interface TcpRow {
  local: string;
  remote: string;
  state: string;
  uid: number;
  inode: string;
}

export type PeerVerdict = { ok: true; uid: number } | { ok: false; reason: string; uid?: number };

export interface PeerCheckDeps {
  /** Read a /proc file; throw if it cannot be read. */
  readFile(path: string): Promise<string>;
  /** Our own uid as the kernel reports it in this user namespace. */
  uid: number;
  /** The kernel's overflow uid (/proc/sys/kernel/overflowuid, normally 65534). */
  overflowUid: number;
  /** Whether we run in the initial user namespace (uid_map is the identity over the whole range). */
  initialUserNs: boolean;
  /** Host byte order, which the kernel uses when it prints addresses and ports (default: os.endianness()). */
  endianness?: 'LE' | 'BE';
}

const ESTABLISHED = '01';

function hex32(word: Buffer, endianness: 'LE' | 'BE'): string {
  const v = endianness === 'LE' ? word.readUInt32LE(0) : word.readUInt32BE(0);
  return v.toString(16).toUpperCase().padStart(8, '0');
}

/** The kernel's text for an address: the raw network-order bytes printed as host-order 32-bit words (%08X each). */
export function procAddress(address: string, family: 4 | 6, endianness: 'LE' | 'BE' = os.endianness()): string | undefined {
  let bytes: Buffer | undefined;
  if (family === 4) {
    if (!net.isIPv4(address)) return undefined;
    bytes = Buffer.from(address.split('.').map(Number));
  } else {
    bytes = ipv6Bytes(address);
  }
  if (!bytes) return undefined;
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) out += hex32(bytes.subarray(i, i + 4), endianness);
  return out;
}

/** 16 bytes of an IPv6 address (including the ::ffff:a.b.c.d form), or undefined. */
export function ipv6Bytes(address: string): Buffer | undefined {
  const zone = address.indexOf('%');
  let text = zone >= 0 ? address.slice(0, zone) : address;
  if (!net.isIPv6(text)) return undefined;
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    // a trailing dotted quad is two 16-bit groups
    const q = last.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, lastColon + 1)}${((q[0] << 8) | q[1]).toString(16)}:${((q[2] << 8) | q[3]).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const head = parse(halves[0] ?? '');
  const rest = halves.length === 2 ? parse(halves[1] ?? '') : [];
  const given = head.length + rest.length;
  if (given > 8 || (halves.length === 1 && given !== 8)) return undefined;
  const groups = [...head, ...new Array<number>(8 - given).fill(0), ...rest];
  const buf = Buffer.alloc(16);
  groups.forEach((g, i) => buf.writeUInt16BE(g & 0xffff, i * 2));
  return buf;
}

function procPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}

/** The IPv4 address inside a v4-mapped IPv6 address (::ffff:a.b.c.d), or undefined. */
function unmapV4(address: string): string | undefined {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return m && net.isIPv4(m[1] as string) ? (m[1] as string) : undefined;
}

/** Parse a /proc/net/tcp or tcp6 table (header line first). Malformed rows are skipped. */
export function parseTcpTable(text: string): TcpRow[] {
  const rows: TcpRow[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = (lines[i] as string).trim().split(/\s+/);
    if (f.length < 10) continue;
    const uid = Number(f[7]);
    if (!Number.isInteger(uid) || uid < 0) continue;
    rows.push({ local: (f[1] as string).toUpperCase(), remote: (f[2] as string).toUpperCase(), state: (f[3] as string).toUpperCase(), uid, inode: f[9] as string });
  }
  return rows;
}

/** The client's row: local = the peer, remote = us. */
export function findPeerRow(rows: TcpRow[], peer: string, us: string): TcpRow[] {
  return rows.filter((r) => r.local === peer && r.remote === us);
}

/** The accept rule on one row (see the module header). */
export function judgeRow(row: TcpRow, deps: Pick<PeerCheckDeps, 'uid' | 'overflowUid' | 'initialUserNs'>): PeerVerdict {
  if (row.state !== ESTABLISHED) return { ok: false, reason: `peer socket is not established (state ${row.state})`, uid: row.uid };
  if (!/^\d+$/.test(row.inode) || row.inode === '0') return { ok: false, reason: 'peer socket has no inode (already closed)', uid: row.uid };
  if (row.uid === deps.overflowUid && !(deps.uid === deps.overflowUid && deps.initialUserNs)) {
    return { ok: false, reason: `peer uid ${row.uid} is the overflow uid (nobody, or a user our namespace cannot see)`, uid: row.uid };
  }
  if (row.uid !== deps.uid) return { ok: false, reason: `peer uid ${row.uid} is not ours (${deps.uid})`, uid: row.uid };
  return { ok: true, uid: row.uid };
}

/**
 * Check the peer of an accepted loopback connection. `peer` is socket.remoteAddress/remotePort and `us` is
 * socket.localAddress/localPort of the ACCEPTED socket.
 */
export async function checkTcpPeer(peer: Endpoint, us: Endpoint, deps: PeerCheckDeps): Promise<PeerVerdict> {
  const endian = deps.endianness ?? os.endianness();
  const tables: Array<{ path: string; peer: string; us: string }> = [];
  const p4 = net.isIPv4(peer.address) ? peer.address : unmapV4(peer.address);
  const u4 = net.isIPv4(us.address) ? us.address : unmapV4(us.address);
  if (p4 !== undefined && u4 !== undefined) {
    const pa = procAddress(p4, 4, endian);
    const ua = procAddress(u4, 4, endian);
    const pm = procAddress(`::ffff:${p4}`, 6, endian);
    const um = procAddress(`::ffff:${u4}`, 6, endian);
    if (pa && ua) tables.push({ path: '/proc/net/tcp', peer: `${pa}:${procPort(peer.port)}`, us: `${ua}:${procPort(us.port)}` });
    if (pm && um) tables.push({ path: '/proc/net/tcp6', peer: `${pm}:${procPort(peer.port)}`, us: `${um}:${procPort(us.port)}` });
  } else {
    const pa = procAddress(peer.address, 6, endian);
    const ua = procAddress(us.address, 6, endian);
    if (pa && ua) tables.push({ path: '/proc/net/tcp6', peer: `${pa}:${procPort(peer.port)}`, us: `${ua}:${procPort(us.port)}` });
  }
  if (tables.length === 0) return { ok: false, reason: `cannot interpret peer address ${peer.address}` };
  const found: TcpRow[] = [];
  let readable = 0;
  for (const t of tables) {
    let text: string;
    try {
      text = await deps.readFile(t.path);
    } catch {
      continue;
    }
    readable++;
    found.push(...findPeerRow(parseTcpTable(text), t.peer, t.us));
    if (found.length > 0) break; // an IPv4 client is in one table or the other, not both
  }
  if (readable === 0) return { ok: false, reason: `cannot read ${tables.map((t) => t.path).join(' or ')}` };
  if (found.length === 0) return { ok: false, reason: 'peer socket not found in /proc/net/tcp (not a local process, or gone)' };
  // Two live rows for one 4-tuple cannot both be the client; if they disagree, refuse.
  const verdicts = found.map((r) => judgeRow(r, deps));
  const bad = verdicts.find((v) => !v.ok);
  return bad ?? (verdicts[0] as PeerVerdict);
}

/**
 * Share table reads between connections accepted in a burst (1000 ranks connecting at once must not mean 1000
 * reads of a table with 2000 rows). A caller only ever joins a read that STARTS after its call: a read already
 * under way may have looked at the table before the caller's connection existed.
 */
export function coalesceReads(read: (path: string) => Promise<string>): (path: string) => Promise<string> {
  const state = new Map<string, { inFlight: Promise<string> | undefined; next: Promise<string> | undefined }>();
  return (path) => {
    let s = state.get(path);
    if (!s) {
      s = { inFlight: undefined, next: undefined };
      state.set(path, s);
    }
    const st = s;
    const start = (): Promise<string> => {
      const r = read(path);
      st.inFlight = r;
      const clear = (): void => {
        if (st.inFlight === r) st.inFlight = undefined;
      };
      r.then(clear, clear);
      return r;
    };
    if (st.inFlight === undefined) return start();
    if (st.next === undefined) {
      st.next = st.inFlight.then(
        () => undefined,
        () => undefined,
      ).then(() => {
        st.next = undefined;
        return start();
      });
    }
    return st.next;
  };
}

/** Whether /proc/self/uid_map says we are in the initial user namespace. */
export function isInitialUserNs(uidMap: string): boolean {
  const lines = uidMap.trim().split('\n');
  if (lines.length !== 1) return false;
  const f = (lines[0] as string).trim().split(/\s+/);
  return f[0] === '0' && f[1] === '0' && f[2] === '4294967295';
}

/** The real dependencies: /proc of this process, our uid from process.getuid(). */
export function systemPeerDeps(): PeerCheckDeps {
  let overflowUid = 65534;
  try {
    const v = Number(fs.readFileSync('/proc/sys/kernel/overflowuid', 'utf8').trim());
    if (Number.isInteger(v) && v >= 0) overflowUid = v;
  } catch {
    // keep the kernel default
  }
  let initialUserNs = false;
  try {
    initialUserNs = isInitialUserNs(fs.readFileSync('/proc/self/uid_map', 'utf8'));
  } catch {
    initialUserNs = false;
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  return { readFile: coalesceReads((p) => fs.promises.readFile(p, 'utf8')), uid, overflowUid, initialUserNs };
}
