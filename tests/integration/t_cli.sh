# The command line and its documentation agree: every command `sbdisk --help`
# lists has its own --help and a section in the man page, every option a
# command's --help lists is in the man page (and the reverse for build), and
# the version is the same everywhere.
. "$(dirname "$0")/lib/common.sh"

man="$REPO_DIR/man/sbdisk.1"
# the man page as text, with roff's escaped dashes made plain
plain=$(sed 's/\\-/-/g; s/\\f[BIRP]//g' "$man")

commands=$("$SBDISK" --help | awk '/^Commands:/{on=1; next} on && /^  [a-z]/{print $1} on && /^$/{on=0}')
if [ -n "$commands" ]; then ok "sbdisk --help lists commands: $(echo $commands)"; else fail "sbdisk --help lists commands"; fi
for c in $commands; do
  if out=$("$SBDISK" "$c" --help 2>&1) && printf '%s' "$out" | head -1 | grep -q "^Usage: sbdisk $c"; then
    ok "sbdisk $c --help"; else fail "sbdisk $c --help" "$(printf '%s' "$out" | head -2)"; fi
  if "$SBDISK" help "$c" 2>&1 | head -1 | grep -q "^Usage: sbdisk $c"; then ok "sbdisk help $c"; else fail "sbdisk help $c"; fi
  if printf '%s\n' "$plain" | grep -q "^\.B sbdisk $c"; then ok "man: $c in the synopsis"; else fail "man: $c in the synopsis"; fi
  missing=""
  for opt in $("$SBDISK" "$c" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    printf '%s\n' "$plain" | grep -q -- "$opt" || missing="$missing $opt"
  done
  if [ -z "$missing" ]; then ok "man: every option of sbdisk $c --help"; else fail "man: options of sbdisk $c" "missing:$missing"; fi
done

# build's options in the man page's OPTIONS section are all real
# (the line after each .TP is an option's term)
man_opts=$(printf '%s\n' "$plain" | awk '/^\.SH OPTIONS/{on=1; next} /^\.SH/{on=0} on && term {print} {term = on && /^\.TP/}' |
  grep -o -- '--[a-z][a-z-]*' | sort -u)
help_opts=$("$SBDISK" build --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
extra=$(comm -23 <(printf '%s\n' $man_opts) <(printf '%s\n' $help_opts) | tr '\n' ' ')
if [ -n "$man_opts" ] && [ -z "$extra" ]; then ok "man: no build option the program lacks"; else fail "man: build options not in --help" "$extra"; fi

version=$("$SBDISK" --version)
if [ "$version" = "$("$SBDISK" -V)" ] && head -1 "$man" | grep -q "\"${version}\""; then
  ok "--version, -V and the man page say $version"; else fail "version" "$version vs $(head -1 "$man")"; fi
if grep -q "^VERSION := ${version#sbdisk }$" "$REPO_DIR/Makefile"; then ok "the Makefile's VERSION is it"; else fail "Makefile VERSION" "$version"; fi

# unknown commands and options: exit 2 and a pointer to --help
"$SBDISK" frobnicate >/dev/null 2>"$T/err"; rc=$?
if [ $rc = 2 ] && grep -q 'unknown command "frobnicate"' "$T/err"; then ok "an unknown command: exit 2"; else fail "an unknown command" "exit $rc"; fi
"$SBDISK" build --frobnicate x >/dev/null 2>"$T/err"; rc=$?
if [ $rc = 2 ] && grep -q -- '--frobnicate.*--help' "$T/err"; then ok "an unknown option: exit 2, points to --help"; else fail "an unknown option" "exit $rc: $(cat "$T/err")"; fi
