#!/usr/bin/env bash
# Install the Debian packages the tests need, only when something is missing. As root it runs apt-get;
# otherwise it prints the command to run.
set -euo pipefail
pkgs=(mpich libmpich-dev libpmi2-0-dev openssh-server openssh-client iproute2 procps psmisc util-linux bubblewrap man-db
  chromium   # chromium: headless rendering of the --report-html page (test/e2e/ux-html.test.ts)
  gcc libc6-dev  # the optional native helper (native/helper.c), which the tests run both with and without
  slurm-wlm munge  # a real one-node Slurm for the batch-system tests (test/slurm/cluster.sh)
  openmpi-bin libopenmpi-dev python3-mpi4py  # Open MPI and mpi4py programs next to MPICH's
  libpmix-dev pkg-config  # libpmix for the PMIx server (native/pmix-server.c)
  hwloc numactl  # topology (lstopo) and the binding fallbacks
  time)  # GNU time: the launcher's peak memory in the bounded-KVS test
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
keep_mpich_default() {
  # Open MPI installed beside MPICH takes the `mpi` and `mpirun` alternatives: MPICH stays the default.
  [ "$(id -u)" -eq 0 ] || return 0
  [ -x /usr/bin/mpicc.mpich ] && update-alternatives --set mpi /usr/bin/mpicc.mpich >/dev/null 2>&1 || true
  [ -x /usr/bin/mpirun.mpich ] && update-alternatives --set mpirun /usr/bin/mpirun.mpich >/dev/null 2>&1 || true
}
[ ${#missing[@]} -eq 0 ] && { keep_mpich_default; exit 0; }
if [ "$(id -u)" -ne 0 ]; then
  echo "tsmpiexec tests need: ${missing[*]}" >&2
  echo "run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
keep_mpich_default
