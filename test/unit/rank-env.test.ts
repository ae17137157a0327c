import { describe, expect, it } from 'vitest';
import { applyPolicy, pmiEnv, segmentEnv } from '../../src/run/rank-env.js';

const launcher = { PATH: '/bin', HOME: '/root', PMI_PORT: 'x:1', PMI_RANK: '9', PMIX_NAMESPACE: 'n', FOO: 'f' };

describe('rank environment', () => {
  it('drops an outer launcher\'s PMI variables', () => {
    const e = applyPolicy(launcher, { kind: 'all' });
    expect(e).toEqual({ PATH: '/bin', HOME: '/root', FOO: 'f' });
  });
  it('applies -genvnone, -genvlist and explicit settings in order', () => {
    expect(segmentEnv(launcher, { policy: { kind: 'none' }, set: [['A', '1']] }, { set: [] })).toEqual({ A: '1' });
    expect(segmentEnv(launcher, { policy: { kind: 'list', names: ['FOO', 'PMI_RANK'] }, set: [] }, { set: [['FOO', 'seg']] })).toEqual({ FOO: 'seg' });
    expect(segmentEnv(launcher, { set: [['FOO', 'g']] }, { policy: { kind: 'none' }, set: [] })).toEqual({ FOO: 'g' });
  });
  it('sets the PMI_FD variables MPICH reads', () => {
    expect(pmiEnv({ rank: 3, size: 8, localRank: 1, localSize: 4, fd: 3 })).toEqual({
      PMI_RANK: '3', PMI_SIZE: '8', MPI_LOCALRANKID: '1', MPI_LOCALNRANKS: '4', PMI_FD: '3',
    });
  });
});

describe('an outer Slurm task', () => {
  it('does not lend its identity to our ranks, whatever the launcher', () => {
    const e = applyPolicy({ SLURM_JOB_ID: '7', SLURM_PROCID: '0', SLURM_STEP_ID: '3', SLURMD_NODENAME: 'n1', PATH: '/bin' }, { kind: 'all' });
    expect(e).toEqual({ SLURM_JOB_ID: '7', PATH: '/bin' });
  });
});
