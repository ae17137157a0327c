// Bring the network-namespace test bed (test/testbed/testbed.sh) up and down from a test file: real sshd
// "hosts" h1..hN plus a login host h0 where tsmpiexec runs.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SCRIPT = path.resolve('test/testbed/testbed.sh');

export interface Bed {
  dir: string;
  prefix: string;
  hosts: string[];
  ssh: string;
  /** argv prefix that runs a command on the login host h0 */
  onLogin: string[];
  script(...args: string[]): string;
  down(): void;
}

export function bedUp(n: number, prefix: string): Bed {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tsmpi-bed-${prefix}-`));
  const script = (...args: string[]): string =>
    execFileSync('bash', [SCRIPT, ...args, '--dir', dir], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    script('up', String(n), '--prefix', prefix);
  } catch (e) {
    try {
      script('down');
    } catch {
      /* best effort */
    }
    throw e;
  }
  return {
    dir,
    prefix,
    hosts: Array.from({ length: n }, (_, i) => `h${i + 1}`),
    ssh: `ssh -F ${dir}/ssh_config`,
    onLogin: ['bash', SCRIPT, 'exec', 'h0', '--dir', dir, '--'],
    script,
    down: () => {
      script('down');
    },
  };
}
