// Public face of src/isolate: containment, limits, accounting and private /tmp for one job on one host.
export { setupIsolation, podCommand } from './setup.js';
export { planIsolation, jobCgroupName } from './plan.js';
export { probeCapabilities } from './probe.js';
export { POD_ENV } from './pod-argv.js';
export { JOB_ENV, RANK_ENV } from './proc-scan.js';
export type {
  Capabilities,
  CgroupKind,
  Isolation,
  IsolationDeps,
  IsolationFs,
  IsolationMode,
  IsolationPlan,
  IsolationRequest,
  RankUsage,
  TmpKind,
} from './types.js';
