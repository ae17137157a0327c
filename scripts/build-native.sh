#!/bin/sh
# Compiles the optional native parts into dist/native: the helper (native/helper.c, static where the C library
# allows), the PMI client library (native/libpmi.c) and the PMIx server (native/pmix-server.c, only where
# libpmix's development files are found by pkg-config; TSMPIEXEC_NO_PMIX=1 builds as if they were not). Used by `make build` and by the npm `install` script.
# Never fails: without a C compiler, or when a compile fails, a part that is already there (shipped in the npm
# package) is kept, and one that is not is left out with a one-line note; tsmpiexec works without both.
# Usage: build-native.sh [helper] [pmi] [pmix]   (all when none is named)
cd "$(dirname "$0")/.." || exit 0
CC=${CC:-cc}
parts=${*:-helper pmi pmix}
out_dir=${TSMPIEXEC_NATIVE_OUT:-dist/native}  # tests build into a directory of their own
mkdir -p "$out_dir" || exit 0
have_cc=1
command -v "$CC" >/dev/null 2>&1 || have_cc=0
for part in $parts; do
  case $part in
    helper) out=$out_dir/tsmpiexec-helper; what="the optional native helper"; without="isolation uses sh and nsenter" ;;
    pmi) out=$out_dir/libtsmpiexec-pmi.so; what="the optional PMI library"; without="Open MPI programs cannot run as one job" ;;
    pmix) out=$out_dir/tsmpiexec-pmix-server; what="the optional PMIx server"; without="Open MPI programs use the PMI-1 route" ;;
    *) echo "build-native.sh: unknown part $part" >&2; continue ;;
  esac
  if [ "$have_cc" = 0 ]; then
    [ -e "$out" ] || echo "tsmpiexec: no C compiler ($CC): building without $what ($without)"
    continue
  fi
  ok=0
  if [ "$part" = pmix ]; then
    pmix_flags=
    if [ "${TSMPIEXEC_NO_PMIX:-0}" != 1 ] && command -v pkg-config >/dev/null 2>&1; then
      pmix_flags=$(pkg-config --cflags --libs pmix 2>/dev/null) || pmix_flags=
    fi
    if [ -z "$pmix_flags" ]; then
      # a copy from another build with libpmix would not run here reliably: without libpmix, none
      rm -f "$out"
      echo "tsmpiexec: libpmix not found (pkg-config pmix; Debian: libpmix-dev): building without $what ($without)"
      continue
    fi
  fi
  case $part in
    helper)
      { "$CC" -O2 -Wall -Wextra -static -o "$out.tmp" native/helper.c 2>/dev/null \
        || "$CC" -O2 -Wall -Wextra -o "$out.tmp" native/helper.c; } && ok=1 ;;
    pmi)
      "$CC" -O2 -Wall -Wextra -fPIC -shared -fvisibility=hidden -Wl,-soname,libtsmpiexec-pmi.so -o "$out.tmp" \
        native/libpmi.c -lpthread && ok=1 ;;
    pmix)
      # shellcheck disable=SC2086 # pkg-config's words
      "$CC" -O2 -Wall -Wextra -o "$out.tmp" native/pmix-server.c $pmix_flags -lpthread && ok=1 ;;
  esac
  if [ "$ok" = 1 ]; then mv -f "$out.tmp" "$out"
  else
    rm -f "$out.tmp"
    if [ -e "$out" ]; then echo "tsmpiexec: $what did not compile here: keeping the one that came with the package"
    else echo "tsmpiexec: $what did not compile: $without"; fi
  fi
done
exit 0
