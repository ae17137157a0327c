// What one PMI engine holds of the job's KVS, against the job's limits (--kvs-max-keys, --kvs-max-bytes): the
// pairs visible after barriers (every group this proxy serves) and the puts of its own ranks not yet returned by
// a barrier. A put that would go over a limit is refused before anything of it is stored, so the launcher's
// memory stays bounded whatever a rank puts. Pure bookkeeping: no I/O.
import type { KvsLimits, KvsOverflow } from './types.js';

function size(key: string, value: string): number {
  return Buffer.byteLength(key) + Buffer.byteLength(value);
}

export class KvsBudget {
  private storedKeys = 0;
  private storedBytes = 0;
  /** Puts admitted and not yet settled by their barrier (each counted as a new key: a re-put is rare). */
  private openKeys = 0;
  private openBytes = 0;

  constructor(readonly limits: KvsLimits) {}

  /** Admit one put (undefined), or say which limit it would break. */
  admit(key: string, value: string): KvsOverflow | undefined {
    if (this.storedKeys + this.openKeys + 1 > this.limits.maxKeys) return { limit: 'keys', max: this.limits.maxKeys };
    const n = size(key, value);
    if (this.storedBytes + this.openBytes + n > this.limits.maxBytes) return { limit: 'bytes', max: this.limits.maxBytes };
    this.openKeys++;
    this.openBytes += n;
    return undefined;
  }

  /** The barrier that carried these admitted puts ended (completed or failed). */
  settle(puts: ReadonlyArray<readonly [string, string]>): void {
    for (const [k, v] of puts) {
      this.openKeys--;
      this.openBytes -= size(k, v);
    }
  }

  /** Store a pair a barrier returned (or an initial pair), counting what it adds. */
  store(kvs: Map<string, string>, key: string, value: string): void {
    const old = kvs.get(key);
    if (old === undefined) {
      this.storedKeys++;
      this.storedBytes += size(key, value);
    } else {
      this.storedBytes += Buffer.byteLength(value) - Buffer.byteLength(old);
    }
    kvs.set(key, value);
  }

  /** Keys and bytes held now (stored and open), for tests and diagnostics. */
  held(): { keys: number; bytes: number } {
    return { keys: this.storedKeys + this.openKeys, bytes: this.storedBytes + this.openBytes };
  }
}
