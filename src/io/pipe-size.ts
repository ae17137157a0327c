// Growing the pipe our output goes into. A pipe holds 64 KiB by default: with `tsmpiexec ... | tee log`, or a
// remote proxy's stdout into sshd, every 64 KiB costs the launcher a wait for the reader and a wake-up, and
// output moved at about two thirds of the rate a 1 MiB pipe allows (4 x 256 MiB into `| cat`: 1.28 s against
// 0.89 s; Hydra 0.88 s). Node cannot fcntl, so the optional native helper does it (`pipe-size`, native/helper.c),
// once, when a write first finds the pipe full: jobs that print little never pay the spawn. 1 MiB is Linux's
// default fs/pipe-max-size, the most an unprivileged user may ask for. Without the helper, or when the kernel
// refuses (the per-user pipe quota), the pipe stays as it is: this only changes speed, so nothing is reported.
import { spawnSync } from 'node:child_process';
import { findNativeHelper } from '../isolate/native.js';

export const PIPE_BYTES = 1 << 20;

/** Grow the pipe behind our `fd` to PIPE_BYTES through the native helper, if there is one. Never throws. */
export function growPipe(fd: number, env: Record<string, string | undefined> = process.env): void {
  const helper = findNativeHelper(env);
  if (helper === undefined) return;
  // Synchronous, once per job: about 2 ms of the launcher's thread, and no process of ours can outlive the job.
  // env {}: nothing of the job's environment is needed. A failure (EMFILE, EPERM) leaves the pipe as it is.
  spawnSync(helper, ['pipe-size', String(PIPE_BYTES)], { stdio: ['ignore', fd, 'ignore'], env: {}, timeout: 2000 });
}
