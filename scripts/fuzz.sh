#!/bin/bash
# Runs the libFuzzer targets built by `make fuzz` (build-fuzz/fuzz/fuzz_X),
# one after the other, each for FUZZ_SECONDS (the layer target for
# FUZZ_LAYER_SECONDS), starting from fuzz/corpus/X.  What libFuzzer learns
# stays under build-fuzz/ (corpus/X, artifacts/X), never in the repository.
# A crash leaves its input in build-fuzz/artifacts/X/: fix the bug, then copy
# the input into fuzz/regress/X/ so that `make check` replays it for ever.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/build-fuzz"
: "${FUZZ_SECONDS:=60}" "${FUZZ_LAYER_SECONDS:=120}"

failed=()
for t in "$@"; do
  secs=$FUZZ_SECONDS
  [ "$t" = layer ] && secs=$FUZZ_LAYER_SECONDS
  mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
  echo "== fuzz_$t for ${secs}s"
  # The layer target writes a disk per input: a generous per-input timeout,
  # and a bounded input size so one input cannot fill the tmpfs.
  extra=()
  [ "$t" = layer ] && extra=(-timeout=60 -max_len=262144)
  # libFuzzer gives up on a corpus directory that does not exist, and git
  # keeps no empty fuzz/regress/X/.
  dirs=("$out/corpus/$t")
  for d in "$here/fuzz/corpus/$t" "$here/fuzz/regress/$t"; do
    [ -d "$d" ] && dirs+=("$d")
  done
  if ! "$out/fuzz/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 \
      -artifact_prefix="$out/artifacts/$t/" "${extra[@]}" "${dirs[@]}" \
      > "$out/fuzz_$t.log" 2>&1; then
    failed+=("$t")
    echo "   fuzz_$t FAILED: see $out/fuzz_$t.log and $out/artifacts/$t/"
  fi
  grep -E '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec' "$out/fuzz_$t.log" | sed 's/^/   /'
done
echo "$(( $# - ${#failed[@]} )) passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
