import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withClaims } from '../../src/binding/claims.js';

function tmpBase(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'claims-test-'));
}

describe('CPU claims of jobs sharing a host', () => {
  it('a second job sees the first one’s CPUs, and the last release leaves nothing behind', () => {
    const base = tmpBase();
    const dir = path.join(base, 'tsmpiexec-x', 'cpus');
    const release1 = withClaims(dir, () => [0]);
    let seen: number[] = [];
    const release2 = withClaims(dir, (held) => {
      seen = [...held];
      return [1];
    });
    expect(seen).toEqual([0]);
    release1();
    expect(fs.existsSync(dir)).toBe(true); // the second job still holds CPU 1
    release2();
    expect(fs.readdirSync(base)).toEqual([]);
    fs.rmdirSync(base);
  });

  it('refuses a directory that others can reach', () => {
    const base = tmpBase();
    const parent = path.join(base, 'tsmpiexec-x');
    fs.mkdirSync(parent, { mode: 0o755 });
    fs.chmodSync(parent, 0o755);
    expect(() => withClaims(path.join(parent, 'cpus'), () => [0])).toThrow(/not a private directory/);
    fs.rmSync(base, { recursive: true, force: true });
  });
});
