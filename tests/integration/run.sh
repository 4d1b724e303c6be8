#!/bin/bash
# Runs the integration tests: every tests/integration/t_*.sh (or the ones named
# on the command line).  Each test script reports one line per case:
#   ok NAME | FAIL NAME: why | skip NAME: why
# and this runner ends with the summary line CI reads: "N passed, N failed".
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${SBDISK:?set SBDISK to the sbdisk binary}"
: "${TOOLS:?set TOOLS to the test tools directory}"
export SBDISK TOOLS

if [ $# -gt 0 ]; then
  scripts=()
  for t in "$@"; do scripts+=("$here/t_${t#t_}"); done
  scripts=("${scripts[@]/%.sh/}"); scripts=("${scripts[@]/%/.sh}")
else
  scripts=("$here"/t_*.sh)
fi

passed=0 failed=0 skipped=0
failures=()
for t in "${scripts[@]}"; do
  name=$(basename "$t" .sh)
  echo "== $name"
  start=$(date +%s)
  out=$(mktemp)
  bash "$t" 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  p=$(grep -c '^ok ' "$out"); f=$(grep -c '^FAIL ' "$out"); s=$(grep -c '^skip ' "$out")
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name: script exited with status $status"
    f=1
  fi
  while IFS= read -r line; do failures+=("$line"); done < <(grep '^FAIL ' "$out")
  [ "$status" -ne 0 ] && [ "$(grep -c '^FAIL ' "$out")" -eq 0 ] && failures+=("FAIL $name: exited $status")
  rm -f "$out"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  echo "   ($name: $p passed, $f failed, $s skipped in $(( $(date +%s) - start ))s)"
done

echo
if [ ${#failures[@]} -gt 0 ]; then
  echo "Failures:"
  printf '  %s\n' "${failures[@]}"
fi
[ "$skipped" -gt 0 ] && echo "($skipped skipped)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
