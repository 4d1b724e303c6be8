# Shared helpers for integration tests.  Source it first:
#   . "$(dirname "$0")/lib/common.sh"
# It gives each test script a private scratch directory ($T) that is removed on
# exit together with every process registered with `bg_register`.
set -u
# Tests talk to 127.0.0.1 only; a proxy from the environment must not intercept that.
export no_proxy="127.0.0.1,localhost,::1${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1,localhost,::1${NO_PROXY:+,$NO_PROXY}"

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$TESTS_DIR/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/sbdisk-test.XXXXXX")
_bg_pids=()
_cleanup_hooks=()

on_exit() { _cleanup_hooks+=("$1"); }

_cleanup() {
  local h pid
  for ((i=${#_cleanup_hooks[@]}-1; i>=0; i--)); do eval "${_cleanup_hooks[$i]}" >/dev/null 2>&1 || true; done
  for pid in "${_bg_pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${_bg_pids[@]}"; do wait "$pid" 2>/dev/null; done
  [ -n "${KEEP_TMP:-}" ] && { echo "kept $T" >&2; return; }
  rm -rf "$T"
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

bg_register() { _bg_pids+=("$1"); }

ok()   { echo "ok $1"; }
fail() { echo "FAIL $1: ${2:-}"; }
skip() { echo "skip $1: ${2:-}"; }

# check NAME COMMAND...: runs the command, reports ok/FAIL with its output tail.
check() {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$(printf '%s' "$out" | tail -5 | tr '\n' ' ')"; fi
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
# Below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by
# default): a port there can be taken at any moment by an outgoing
# connection's local end, and a server then fails to bind it ("address
# already in use", seen in CI).
free_port() {
  local port i low=10000 high
  high=$(awk '{print $1 - 1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32767)
  [ "${high:-0}" -gt $((low + 1000)) ] || high=32767
  for ((i = 0; i < 100; i++)); do
    port=$((low + RANDOM % (high - low)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  return 1
}

# wait_for_port PORT [SECONDS]
wait_for_port() {
  local port=$1 limit=${2:-20} i
  for ((i = 0; i < limit * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# sparse_digest FILE: a sha256 over FILE's size, the offsets of its data
# extents and their bytes.  Equal for equal files, and reads only the data: a
# 10 GiB disk image with a few MiB of content is compared in milliseconds,
# where cmp would read 10 GiB of holes.
sparse_digest() {
  python3 - "$1" <<'PY'
import hashlib, os, sys
h = hashlib.sha256()
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
h.update(b"size %d\n" % size)
pos = 0
while pos < size:
    try:
        start = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        break
    end = os.lseek(fd, start, os.SEEK_HOLE)
    h.update(b"data %d %d\n" % (start, end))
    os.lseek(fd, start, os.SEEK_SET)
    left = end - start
    while left > 0:
        b = os.read(fd, min(left, 1 << 20))
        if not b:
            break
        h.update(b)
        left -= len(b)
    pos = end
print(h.hexdigest())
PY
}

# sparse_sha256 FILE: sha256sum's answer for FILE, reading only its data
# extents and hashing zeros for the holes: Python's hashlib, a second opinion
# on sbdisk's own digest, without paging in gigabytes of holes.
sparse_sha256() {
  python3 - "$1" <<'PY'
import hashlib, os, sys
h = hashlib.sha256()
zeros = bytes(1 << 20)
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
def hash_zeros(n):
    while n > 0:
        k = min(n, len(zeros))
        h.update(zeros if k == len(zeros) else zeros[:k])
        n -= k
pos = 0
while pos < size:
    try:
        start = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        start = size
    hash_zeros(start - pos)
    if start >= size:
        break
    end = os.lseek(fd, start, os.SEEK_HOLE)
    left, off = end - start, start
    while left > 0:
        b = os.pread(fd, min(left, 1 << 20), off)
        if not b:
            sys.exit("short read")
        h.update(b)
        left -= len(b); off += len(b)
    pos = end
print(h.hexdigest())
PY
}

# sparse_cmp A B: whether two files hold the same bytes, comparing only where
# either has data (a hole reads as zeros), whatever their extents.
sparse_cmp() {
  python3 - "$1" "$2" <<'PY'
import os, sys
fa, fb = (os.open(p, os.O_RDONLY) for p in sys.argv[1:3])
size = os.fstat(fa).st_size
if os.fstat(fb).st_size != size:
    sys.exit("sizes differ: %d and %d" % (size, os.fstat(fb).st_size))
def data_regions(fd):
    out, pos = [], 0
    while pos < size:
        try:
            s = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            break
        e = os.lseek(fd, s, os.SEEK_HOLE)
        out.append((s, e)); pos = e
    return out
pos = 0
for s, e in sorted(data_regions(fa) + data_regions(fb)):
    s = max(s, pos)
    while s < e:
        n = min(e - s, 1 << 20)
        if os.pread(fa, n, s) != os.pread(fb, n, s):
            sys.exit("they differ in bytes [%d, %d)" % (s, s + n))
        s += n
    pos = max(pos, e)
PY
}

# The official verifier's checksum of a snapshot directory, by its own
# command: every file's md5, sorted, md5'd (what snapshots.metadata records).
verifier_md5() { (cd "$1" && find . -type f -exec md5sum {} + | cut -d' ' -f1 | LC_ALL=C sort | md5sum | cut -d' ' -f1); }
