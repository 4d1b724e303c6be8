# Faithful or refused: every layer containerd's applier itself refuses (the
# R-list in lib/corpus.sh) must make sbdisk fail too — exit 4, one message
# naming the image, the layer and the tar entry, and the output untouched.
# Each case is checked against the real containerd first, so the test keeps
# saying what containerd does, not what we think it does.
. "$(dirname "$0")/lib/common.sh"
. "$TESTS_DIR/lib/registry.sh"
. "$TESTS_DIR/lib/layout.sh"
. "$TESTS_DIR/lib/containerd.sh"

registry_start || { fail "refuse: registry" "did not start"; exit 1; }
have_ref=0
if is_root; then
  containerd_start; rc=$?
  [ $rc -eq 0 ] && have_ref=1
  [ $rc -eq 2 ] && skip "refuse: containerd cross-check" "$CONTAINERD_SKIP"
else
  skip "refuse: containerd cross-check" "needs root"
fi

base='file keep 0644 0 0 1500000000 text:kept'
layout_init "$T/layout"
n=0
# case NAME ENTRY-REGEX FIRST-LAYER-SPEC [SECOND-LAYER-SPEC]
case_() {
  local name=$1 re=$2 spec1=$3 spec2=${4:-}
  n=$((n + 1))
  printf '%b\n' "$spec1" > "$T/c$n-1.spec"
  "$TOOLS/mklayer" "$T/c$n-1.spec" "$T/c$n-1.tar" 2>/dev/null || { fail "$name" "mklayer failed"; return; }
  local layers=("$T/c$n-1.tar:gzip") bad=1
  if [ -n "$spec2" ]; then
    printf '%b\n' "$spec2" > "$T/c$n-2.spec"
    "$TOOLS/mklayer" "$T/c$n-2.spec" "$T/c$n-2.tar" 2>/dev/null || { fail "$name" "mklayer failed"; return; }
    layers+=("$T/c$n-2.tar:gzip"); bad=2
  fi
  layout_image "$T/layout" "r$n" --platform linux/amd64 "${layers[@]}" >/dev/null &&
    layout_push_raw "$T/layout" "r$n" "refuse/r$n:v1" || { fail "$name" "push failed"; return; }
  local ref="$REGISTRY/refuse/r$n:v1"
  if [ $have_ref = 1 ]; then
    if containerd_pull "$ref" >/dev/null 2>&1; then fail "$name" "containerd accepts this layer: not a must-refuse case"; return; fi
  fi
  local dir="$T/out$n"; mkdir -p "$dir"; printf 'previous\n' > "$dir/disk.raw"
  local msg rc
  msg=$("$SBDISK" build -q --cache-dir "$T/cache" -o "$dir/disk.raw" "$ref" 2>&1); rc=$?
  if [ $rc -ne 4 ]; then fail "$name" "exit $rc, want 4: $msg"; return; fi
  if ! grep -Eq "^sbdisk: error: image $ref: layer $bad/$bad \(sha256:[0-9a-f]{64}\): entry $re" <<<"$msg"; then
    fail "$name" "message does not name image, layer and entry /$re/: $msg"; return; fi
  if [ "$(cat "$dir/disk.raw")" != previous ] || [ "$(ls -A "$dir")" != disk.raw ]; then
    fail "$name" "output not left as it was: $(ls -A "$dir" | tr '\n' ' ')"; return; fi
  ok "$name"
  if [ -n "${VERBOSE:-}" ]; then echo "   $msg"; fi
}

case_ "R1 whiteout of an entry the same layer made" '\.wh\.x: .*same layer' \
  "$base" 'file x 0644 0 0 1500000000 text:a\nfile .wh.x 0644 0 0 1500000000 empty'
case_ "R2 whiteout of a directory the same layer made" '\.wh\.X: ' \
  "$base" 'dir X 0755 0 0 1500000000\nfile .wh.X 0644 0 0 1500000000 empty'
case_ "R3 first layer: a directory, then its whiteout" 'd: .*(No such file|times)' \
  'dir d 0755 0 0 1500000000\nfile .wh.d 0644 0 0 1500000000 empty'
case_ "R4 a directory, a file replacing it, then its whiteout" 'd: ' \
  'dir d 0755 0 0 1500000000\nfile d 0644 0 0 1500000000 text:f\nfile .wh.d 0644 0 0 1500000000 empty'
case_ "R5 whiteout named .wh.." '\.wh\.\.: .*invalid whiteout' \
  "$base" 'file .wh.. 0644 0 0 1500000000 empty'
case_ "R6 hardlink to a file only a lower layer has" 'h: .*hard link target keep' \
  "$base" 'hardlink h keep 0644 0 0 1500000000'
case_ "R6 hardlink to a name nothing has" 'h: .*hard link target nowhere' \
  "$base" 'hardlink h nowhere 0644 0 0 1500000000'
case_ "R7 hardlink to a directory" 'h: .*(hard link to directory|Operation not permitted)' \
  "$base" 'dir a 0755 0 0 1500000000\nhardlink h a 0644 0 0 1500000000'
case_ "R7 hardlink to .." 'h: .*(hard link to directory|Operation not permitted)' \
  "$base" 'hardlink h .. 0644 0 0 1500000000'
case_ "R8 an entry below a file" 'f/x: .*Not a directory' \
  'file f 0644 0 0 1500000000 text:f\nfile f/x 0644 0 0 1500000000 text:x'
case_ "R8 an opaque marker below a file" 'f/\.wh\.\.wh\.\.opq: .*Not a directory' \
  'file f 0644 0 0 1500000000 text:f\nfile f/.wh..wh..opq 0644 0 0 1500000000 empty'
case_ "R9 an entry below its own whiteout" 'd/x: .*Not a directory' \
  "$base" 'file .wh.d 0644 0 0 1500000000 empty\nfile d/x 0644 0 0 1500000000 text:x'
case_ "R10 a symlink loop on the way" 'a/x: .*too many levels of symbolic links' \
  'symlink a b 0 0 1500000000\nsymlink b a 0 0 1500000000\nfile a/x 0644 0 0 1500000000 text:x'
long=$(printf 'n%.0s' {1..256})
case_ "R12 a file name longer than 255 bytes" "d/$long: .*file name of 256 bytes is longer than ext4's 255" \
  "file d/$long 0644 0 0 1500000000 text:x"
case_ "R12 a directory name longer than 255 bytes" "$long/x: .*directory name of 256 bytes" \
  "file $long/x 0644 0 0 1500000000 text:x"
case_ "R12 a directory name longer than 255 bytes, reached through a symlink" \
  "s/x: .*directory name of 256 bytes" "symlink s $long 0 0 1500000000\nfile s/x 0644 0 0 1500000000 text:x"
case_ "R12 a whiteout of a name longer than 255 bytes" "\\.wh\\.$long: .*file name of 256 bytes" \
  "$base" "file .wh.$long 0644 0 0 1500000000 empty"
