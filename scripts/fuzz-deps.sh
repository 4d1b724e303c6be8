#!/bin/sh
# `make fuzz` needs clang and libFuzzer's runtime (Debian 12: clang and
# libclang-rt-14-dev, which clang-14 pulls in).  Installs them when missing
# and we are root; otherwise says what to install.
set -eu
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
  > "$probe/t.c"
works() { clang -fsanitize=fuzzer "$probe/t.c" -o "$probe/t" >/dev/null 2>&1; }
works && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "fuzz-deps: clang -fsanitize=fuzzer does not link; as root: apt-get install clang libclang-rt-14-dev" >&2
  exit 1
fi
echo "fuzz-deps: installing clang libclang-rt-14-dev" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev >/dev/null
works || { echo "fuzz-deps: clang -fsanitize=fuzzer still fails after installing" >&2; exit 1; }
