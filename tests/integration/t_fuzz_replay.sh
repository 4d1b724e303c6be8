# The fuzz targets without libFuzzer: every seed in fuzz/corpus/X and every
# input that once made a target fail (fuzz/regress/X) goes through the same
# LLVMFuzzerTestOneInput, linked with a plain main() (fuzz/replay.c), so CI
# proves the fixes hold without time to fuzz.  Each input runs in its own
# process: one that aborts must not hide the others.
. "$(dirname "$0")/lib/common.sh"
: "${FUZZ_REPLAY:?set FUZZ_REPLAY to the directory holding replay_X (make integration does)}"

for target in ref manifest www_authenticate layer; do
  bin="$FUZZ_REPLAY/replay_$target"
  [ -x "$bin" ] || { fail "fuzz replay: $target" "$bin is missing"; continue; }
  n=0
  for f in "$REPO_DIR/fuzz/corpus/$target"/* "$REPO_DIR/fuzz/regress/$target"/*; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    rel=${f#"$REPO_DIR"/fuzz/}
    if out=$("$bin" "$f" 2>&1) && [ "$out" = "ok $f" ]; then
      ok "fuzz replay: $rel"
    else
      fail "fuzz replay: $rel" "$(printf '%s' "$out" | grep -m3 -E 'ERROR|SUMMARY|abort|fuzz_' | tr '\n' ' ')"
    fi
  done
  # An empty seed corpus would make this test pass without replaying anything.
  [ "$n" -gt 0 ] || fail "fuzz replay: $target" "no inputs under fuzz/corpus/$target"
done
