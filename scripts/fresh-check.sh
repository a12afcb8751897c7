#!/usr/bin/env bash
# What a new user does: clone the committed main into a temporary folder and run the README's two
# quick-start commands there, verbatim, with a fresh HOME (so npm's cache and pnpm's store and
# metadata start empty) and none of the caller's XDG_*, npm_config_* or PNPM_HOME variables.
# Prints how long each command took; exits non-zero if either failed.
#
# The test command runs first, so that it is the one that meets the empty caches (its install, the
# browser, Node 24 and OpenClaw for the end-to-end test); the main job (`demo`) runs after it in the
# same clone, as a user who tried both would.
#
#   scripts/fresh-check.sh              both commands
#   scripts/fresh-check.sh --test-only  only the test command
#   VIGIL_FRESH_KEEP=1 ...              keep the temporary folder for a look afterwards
set -uo pipefail

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel) || exit 2
readme="$repo/README.md"
[ -f "$readme" ] || { echo "fresh-check: no README.md in $repo" >&2; exit 2; }

# The two commands, read from the README so the check cannot drift from what users are told.
mapfile -t commands < <(grep -E '^npx -y pnpm@[0-9.]+ install --frozen-lockfile && ' "$readme")
if [ "${#commands[@]}" -ne 2 ]; then
  echo "fresh-check: expected the README's two quick-start commands, found ${#commands[@]}" >&2
  exit 2
fi
demo=${commands[0]}
tests=${commands[1]}

work=$(mktemp -d /tmp/vigil-fresh.XXXXXX)
cleanup() { [ -n "${VIGIL_FRESH_KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
git clone --quiet --branch main "$repo" "$work/vigil" || exit 2
mkdir -p "$work/home"

# A clean environment: a new HOME, the system PATH, nothing inherited that points at a cache.
run() {
  local name=$1 command=$2 started status
  echo "fresh-check: [$name] $command"
  started=$(date +%s)
  (
    cd "$work/vigil" &&
      env -i HOME="$work/home" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        TERM="${TERM:-dumb}" LANG="${LANG:-C.UTF-8}" CI=1 bash -c "$command"
  ) > "$work/$name.log" 2>&1
  status=$?
  local took=$(($(date +%s) - started))
  tail -n 8 "$work/$name.log" | sed 's/^/    /'
  # A failure names its tests: the temporary folder (and its log) is gone afterwards.
  [ "$status" -eq 0 ] || grep -E ' FAIL | × ' "$work/$name.log" | sed 's/\x1b\[[0-9;]*m//g; s/^/    /' | head -n 40
  echo "fresh-check: [$name] exit ${status} after ${took} s"
  timings+=("$name: ${took} s (exit ${status})")
  return "$status"
}

timings=()
failed=0
run test "$tests" || failed=1
if [ "${1:-}" != "--test-only" ]; then
  run demo "$demo" || failed=1
fi

echo "fresh-check: commit $(git -C "$work/vigil" rev-parse --short HEAD), $(nproc) cores, node $(node --version)"
printf 'fresh-check: %s\n' "${timings[@]}"
[ -n "${VIGIL_FRESH_KEEP:-}" ] && echo "fresh-check: kept $work"
exit "$failed"
