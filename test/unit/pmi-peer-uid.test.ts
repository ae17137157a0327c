// The loopback peer check behind PMI_PORT over TCP (src/pmi/peer-uid.ts): the kernel's address encoding, the
// row we must match (the client's, not our accepted socket's mirror), the traps (TIME_WAIT rows with uid 0,
// the overflow uid, v4-mapped clients in tcp6, unreadable tables), and one real connection on this machine.
import net from 'node:net';
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkTcpPeer,
  coalesceReads,
  findPeerRow,
  ipv6Bytes,
  isInitialUserNs,
  judgeRow,
  parseTcpTable,
  procAddress,
  systemPeerDeps,
  type PeerCheckDeps,
} from '../../src/pmi/peer-uid.js';

const HEADER4 = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
const HEADER6 = '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';

function row(sl: number, local: string, remote: string, st: string, uid: number, inode: number): string {
  return `  ${sl}: ${local} ${remote} ${st} 00000000:00000000 00:00000000 00000000 ${uid} 0 ${inode} 1 0000000000000000 20 4 30 10 -1`;
}

// Server 127.0.0.1:5555 (15B3), client 127.0.0.1:40000 (9C40), little-endian host.
const SERVER = '0100007F:15B3';
const CLIENT = '0100007F:9C40';
const peer = { address: '127.0.0.1', port: 40000 };
const us = { address: '127.0.0.1', port: 5555 };

function deps(tables: Record<string, string | Error>, over: Partial<PeerCheckDeps> = {}): PeerCheckDeps {
  return {
    readFile: async (p) => {
      const t = tables[p];
      if (t === undefined) throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
      if (t instanceof Error) throw t;
      return t;
    },
    uid: 1000,
    overflowUid: 65534,
    initialUserNs: true,
    endianness: 'LE',
    ...over,
  };
}

describe('kernel address encoding', () => {
  it('prints IPv4 as one host-order word and IPv6 as four', () => {
    expect(procAddress('127.0.0.1', 4, 'LE')).toBe('0100007F');
    expect(procAddress('127.0.0.1', 4, 'BE')).toBe('7F000001');
    expect(procAddress('10.1.2.3', 4, 'LE')).toBe('0302010A');
    expect(procAddress('::1', 6, 'LE')).toBe('00000000000000000000000001000000');
    expect(procAddress('::ffff:127.0.0.1', 6, 'LE')).toBe('0000000000000000FFFF00000100007F');
    expect(procAddress('not-an-ip', 4)).toBeUndefined();
  });
  it('expands IPv6 forms', () => {
    expect(ipv6Bytes('fe80::1%eth0')?.toString('hex')).toBe('fe800000000000000000000000000001');
    expect(ipv6Bytes('1:2:3:4:5:6:7:8')?.toString('hex')).toBe('00010002000300040005000600070008');
    expect(ipv6Bytes('::ffff:10.0.0.1')?.toString('hex')).toBe('00000000000000000000ffff0a000001');
    expect(ipv6Bytes('1::2::3')).toBeUndefined();
  });
});

describe('the table and the rule', () => {
  const table = [HEADER4, row(0, SERVER, '00000000:0000', '0A', 1000, 11), row(1, SERVER, CLIENT, '01', 1000, 12), row(2, CLIENT, SERVER, '01', 2000, 13), 'garbage line'].join('\n');

  it('finds the client row, not the mirror row of our accepted socket', () => {
    const rows = parseTcpTable(table);
    expect(rows).toHaveLength(3);
    const found = findPeerRow(rows, CLIENT, SERVER);
    expect(found).toHaveLength(1);
    expect(found[0]?.uid).toBe(2000);
  });

  it('accepts only ESTABLISHED, a live inode, our uid, and never the overflow uid', () => {
    const base = { local: CLIENT, remote: SERVER, state: '01', uid: 1000, inode: '5' };
    const d = { uid: 1000, overflowUid: 65534, initialUserNs: true };
    expect(judgeRow(base, d).ok).toBe(true);
    expect(judgeRow({ ...base, state: '06', uid: 1000, inode: '0' }, d)).toMatchObject({ ok: false, reason: expect.stringMatching(/not established/) });
    expect(judgeRow({ ...base, inode: '0' }, d)).toMatchObject({ ok: false, reason: expect.stringMatching(/no inode/) });
    expect(judgeRow({ ...base, uid: 1001 }, d)).toMatchObject({ ok: false, uid: 1001 });
    // TIME_WAIT rows carry uid 0: must not pass for a root-owned job
    expect(judgeRow({ ...base, state: '06', uid: 0, inode: '0' }, { ...d, uid: 0 }).ok).toBe(false);
    // a proxy in a user namespace sees strangers as 65534; so does a proxy that is 65534 there
    expect(judgeRow({ ...base, uid: 65534 }, { ...d, uid: 65534, initialUserNs: false }).ok).toBe(false);
    expect(judgeRow({ ...base, uid: 65534 }, { ...d, uid: 65534, initialUserNs: true }).ok).toBe(true);
  });

  it('checks a peer end to end, failing closed', async () => {
    const own = [HEADER4, row(1, SERVER, CLIENT, '01', 1000, 12), row(2, CLIENT, SERVER, '01', 1000, 13)].join('\n');
    expect(await checkTcpPeer(peer, us, deps({ '/proc/net/tcp': own }))).toEqual({ ok: true, uid: 1000 });
    expect(await checkTcpPeer(peer, us, deps({ '/proc/net/tcp': table }))).toMatchObject({ ok: false, uid: 2000 });
    // the peer's row is gone (it closed, or it is not local)
    expect(await checkTcpPeer(peer, us, deps({ '/proc/net/tcp': [HEADER4, row(1, SERVER, CLIENT, '01', 1000, 12)].join('\n') }))).toMatchObject({ ok: false, reason: expect.stringMatching(/not found/) });
    // nothing readable: refuse
    expect(await checkTcpPeer(peer, us, deps({ '/proc/net/tcp': new Error('EACCES') }))).toMatchObject({ ok: false, reason: expect.stringMatching(/cannot read/) });
    expect(await checkTcpPeer({ address: 'bogus', port: 1 }, us, deps({}))).toMatchObject({ ok: false });
  });

  it('finds an AF_INET6 client that reached our IPv4 socket through a v4-mapped address in tcp6', async () => {
    const mapped = (hexPort: string): string => `0000000000000000FFFF00000100007F:${hexPort}`;
    const t6 = [HEADER6, row(0, mapped('9C40'), mapped('15B3'), '01', 3000, 21)].join('\n');
    const v = await checkTcpPeer(peer, us, deps({ '/proc/net/tcp': HEADER4, '/proc/net/tcp6': t6 }));
    expect(v).toMatchObject({ ok: false, uid: 3000 });
    const v2 = await checkTcpPeer(peer, us, deps({ '/proc/net/tcp': HEADER4, '/proc/net/tcp6': t6 }, { uid: 3000 }));
    expect(v2).toEqual({ ok: true, uid: 3000 });
  });

  it('refuses when two live rows for the tuple disagree', async () => {
    const t = [HEADER4, row(1, CLIENT, SERVER, '01', 1000, 12), row(2, CLIENT, SERVER, '01', 0, 13)].join('\n');
    expect((await checkTcpPeer(peer, us, deps({ '/proc/net/tcp': t }))).ok).toBe(false);
  });

  it('recognises the initial user namespace', () => {
    expect(isInitialUserNs('         0          0 4294967295\n')).toBe(true);
    expect(isInitialUserNs('         0       1000          1\n')).toBe(false);
    expect(isInitialUserNs('0 0 4294967295\n1 1 1\n')).toBe(false);
  });
});

describe('table reads shared by a burst of connections', () => {
  it('gives every caller a read that started after its call, sharing the next one', async () => {
    const started: Array<{ n: number; finish: (text: string) => void; fail: (e: Error) => void }> = [];
    const read = coalesceReads(
      () =>
        new Promise<string>((resolve, reject) => {
          started.push({ n: started.length + 1, finish: resolve, fail: reject });
        }),
    );
    const a = read('/proc/net/tcp');
    expect(started).toHaveLength(1);
    const b = read('/proc/net/tcp');
    const c = read('/proc/net/tcp');
    expect(started).toHaveLength(1); // b and c must not join read 1, which may predate their connections
    started[0]?.finish('one');
    expect(await a).toBe('one');
    await new Promise((r) => setImmediate(r));
    expect(started).toHaveLength(2);
    started[1]?.fail(new Error('EIO'));
    await expect(b).rejects.toThrow('EIO');
    await expect(c).rejects.toThrow('EIO');
    const d = read('/proc/net/tcp');
    expect(started).toHaveLength(3);
    started[2]?.finish('three');
    expect(await d).toBe('three');
    // another table has its own schedule
    const e = read('/proc/net/tcp6');
    expect(started).toHaveLength(4);
    started[3]?.finish('six');
    expect(await e).toBe('six');
  });
});

describe('on this machine', () => {
  const open: Array<net.Server | net.Socket> = [];
  afterEach(() => {
    for (const x of open.splice(0)) {
      if (x instanceof net.Socket) x.destroy();
      else x.close();
    }
  });

  it('accepts a loopback connection made by this very process (our uid)', async () => {
    const d = systemPeerDeps();
    expect(d.uid).toBe(process.getuid?.());
    expect(d.overflowUid).toBe(Number(fs.readFileSync('/proc/sys/kernel/overflowuid', 'utf8')));
    const server = net.createServer({ pauseOnConnect: true });
    open.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const client = net.connect(port, '127.0.0.1');
    open.push(client);
    const s = await accepted;
    open.push(s);
    const v = await checkTcpPeer({ address: s.remoteAddress as string, port: s.remotePort as number }, { address: s.localAddress as string, port: s.localPort as number }, d);
    expect(v).toEqual({ ok: true, uid: d.uid });
    server.close();
  });
});
