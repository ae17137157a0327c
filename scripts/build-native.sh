#!/bin/sh
# Compiles the optional native parts into dist/native: the helper (native/helper.c, static where the C library
# allows) and the PMI client library (native/libpmi.c). Used by `make build` and by the npm `install` script.
# Never fails: without a C compiler, or when a compile fails, a part that is already there (shipped in the npm
# package) is kept, and one that is not is left out with a one-line note; tsmpiexec works without both.
# Usage: build-native.sh [helper] [pmi]   (both when none is named)
cd "$(dirname "$0")/.." || exit 0
CC=${CC:-cc}
parts=${*:-helper pmi}
mkdir -p dist/native || exit 0
have_cc=1
command -v "$CC" >/dev/null 2>&1 || have_cc=0
for part in $parts; do
  case $part in
    helper) out=dist/native/tsmpiexec-helper; what="the optional native helper"; without="isolation uses sh and nsenter" ;;
    pmi) out=dist/native/libtsmpiexec-pmi.so; what="the optional PMI library"; without="Open MPI programs cannot run as one job" ;;
    *) echo "build-native.sh: unknown part $part" >&2; continue ;;
  esac
  if [ "$have_cc" = 0 ]; then
    [ -e "$out" ] || echo "tsmpiexec: no C compiler ($CC): building without $what ($without)"
    continue
  fi
  ok=0
  case $part in
    helper)
      { "$CC" -O2 -Wall -Wextra -static -o "$out.tmp" native/helper.c 2>/dev/null \
        || "$CC" -O2 -Wall -Wextra -o "$out.tmp" native/helper.c; } && ok=1 ;;
    pmi)
      "$CC" -O2 -Wall -Wextra -fPIC -shared -fvisibility=hidden -Wl,-soname,libtsmpiexec-pmi.so -o "$out.tmp" \
        native/libpmi.c -lpthread && ok=1 ;;
  esac
  if [ "$ok" = 1 ]; then mv -f "$out.tmp" "$out"
  else
    rm -f "$out.tmp"
    if [ -e "$out" ]; then echo "tsmpiexec: $what did not compile here: keeping the one that came with the package"
    else echo "tsmpiexec: $what did not compile: $without"; fi
  fi
done
exit 0
