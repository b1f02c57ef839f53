#!/usr/bin/env bash
# The server matrix (`npm run test:servers`): the protocol tests, the property suites and the cluster
# suite against every Redis-compatible server found, one after another, then a table
# server x suite -> passed / failed / skipped and the time each took.
#
#   bash scripts/test-servers.sh                 the system redis-server (first on PATH) and every
#                                                folder under $FAIRLOCK_SERVERS_DIR (default
#                                                ../shared/servers) and in $FAIRLOCK_SERVERS
#   bash scripts/test-servers.sh DIR|BINARY...   only these: a folder holding redis-server, or a
#                                                server binary of any name (valkey-server works)
#
# Each server is put first on PATH: the test helpers start `redis-server` from PATH, and the tests
# that need a later version than that server (sharded pub/sub on a cluster: Redis 7.0) skip
# themselves, with the reason in their title (see test/helpers/server-version.ts).
#
# Environment:
#   FAIRLOCK_SERVERS        more servers, separated by spaces (folders or binaries)
#   FAIRLOCK_SERVERS_DIR    the folder of server folders (default ../shared/servers; absent = none)
#   FAIRLOCK_SERVERS_SYSTEM 0 = leave the system redis-server out (npm test already ran on it)
#   FAIRLOCK_SERVER_SUITES  which suites, by name (default "protocol properties cluster"):
#                             protocol            test/protocol/*.test.ts
#                             properties          test/properties/*.test.ts
#                             properties-lock     test/properties/lock.test.ts
#                             cluster             test/cluster/*.test.ts
#                             cluster-properties  test/cluster/properties-*.test.ts
#                             tls                 test/tls.test.ts
#                             groups              test/groups.test.ts (fair share: the engine's group mode)
# Exit status: 1 when any suite failed on any server (the table is printed first).
set -uo pipefail
cd "$(dirname "$0")/.."

declare -A SUITE_FILES=(
  [protocol]='test/protocol/*.test.ts'
  [properties]='test/properties/*.test.ts'
  [properties-lock]='test/properties/lock.test.ts'
  [cluster]='test/cluster/*.test.ts'
  [cluster-properties]='test/cluster/properties-*.test.ts'
  [tls]='test/tls.test.ts'
  [groups]='test/groups.test.ts'
)
suites=${FAIRLOCK_SERVER_SUITES:-protocol properties cluster}
for s in $suites; do
  [ -n "${SUITE_FILES[$s]:-}" ] || { echo "test-servers: unknown suite '$s' (known: ${!SUITE_FILES[*]})" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A folder with `redis-server` in it for a server given as a folder or a binary (a binary of another
# name, e.g. valkey-server, gets a link named redis-server, and its redis-cli beside it when there is one).
server_dir() {
  local given="$1"
  if [ -d "$given" ] && [ -x "$given/redis-server" ]; then
    (cd "$given" && pwd)
  elif [ -f "$given" ] && [ -x "$given" ]; then
    local dir
    dir=$(mktemp -d "$work/server.XXXXXX")
    ln -s "$(cd "$(dirname "$given")" && pwd)/$(basename "$given")" "$dir/redis-server"
    local cli
    for cli in redis-cli valkey-cli; do
      if [ -x "$(dirname "$given")/$cli" ]; then ln -s "$(cd "$(dirname "$given")" && pwd)/$cli" "$dir/redis-cli"; break; fi
    done
    echo "$dir"
  else
    echo "test-servers: '$given' is neither a folder holding redis-server nor an executable" >&2
    return 1
  fi
}

candidates=()
if [ $# -gt 0 ]; then
  candidates=("$@")
else
  if [ "${FAIRLOCK_SERVERS_SYSTEM:-1}" != 0 ] && command -v redis-server >/dev/null 2>&1; then
    candidates+=("$(dirname "$(command -v redis-server)")")
  fi
  servers_dir=${FAIRLOCK_SERVERS_DIR:-../shared/servers}
  if [ -d "$servers_dir" ]; then
    for d in "$servers_dir"/*/; do [ -x "$d/redis-server" ] && candidates+=("${d%/}"); done
  fi
  for s in ${FAIRLOCK_SERVERS:-}; do candidates+=("$s"); done
fi

servers_dir=${servers_dir:-} dirs=() labels=() seen=' '
for c in "${candidates[@]}"; do
  dir=$(server_dir "$c") || exit 2
  real=$(readlink -f "$dir/redis-server")
  case "$seen" in *" $real "*) continue ;; esac
  seen="$seen$real "
  version=$("$dir/redis-server" --version 2>/dev/null | sed -E 's/^([A-Za-z]+) server v=([0-9.]+).*/\1 \2/')
  [ -n "$version" ] || { echo "test-servers: $dir/redis-server --version failed" >&2; exit 2; }
  dirs+=("$dir")
  labels+=("$version")
done
if [ ${#dirs[@]} -eq 0 ]; then
  echo "test-servers: no server to test (none on PATH or left out, none under ${servers_dir:-the folders given}): nothing to do"
  exit 0
fi

# The cluster suite's README test runs the built CLI.
[ -f dist/index.js ] || npm run build >/dev/null

rows=() failed=0 total_started=$SECONDS sum_passed=0 sum_failed=0 sum_skipped=0
for i in "${!dirs[@]}"; do
  dir=${dirs[$i]} label=${labels[$i]}
  for s in $suites; do
    # shellcheck disable=SC2086 # the glob is meant to expand
    files=$(ls ${SUITE_FILES[$s]} 2>/dev/null)
    if [ -z "$files" ]; then rows+=("$label|$s|no test files|0"); continue; fi
    log="$work/$i-$s.log"
    echo "=== $label: $s ($(echo $files | wc -w) files, redis-server from $dir)"
    started=$SECONDS
    # shellcheck disable=SC2086
    PATH="$dir:$PATH" node node_modules/ava/entrypoints/cli.mjs $files >"$log" 2>&1
    rc=$?
    took=$((SECONDS - started))
    # ava lists each passed test (✔) and each skipped one (- [skip]); its summary counts the failures
    # (a file that crashed or timed out counts none: ava's exit status says so).
    passed=$(grep -cE '^ *✔' "$log") skipped=$(grep -cE '^ *- \[skip\]' "$log")
    failures=$(grep -Eo '^ *[0-9]+ tests? failed' "$log" | grep -Eo '[0-9]+' | tail -n 1)
    grep -E '^ *(- |✘)' "$log" | sed 's/^/    /'   # skips with their reasons, and failures
    if [ "$rc" -ne 0 ]; then
      failed=1
      tail -n 40 "$log"
    fi
    sum_passed=$((sum_passed + passed)) sum_failed=$((sum_failed + ${failures:-0})) sum_skipped=$((sum_skipped + skipped))
    result="${passed:-0} passed, ${failures:-0} failed, ${skipped:-0} skipped"
    [ "$rc" -ne 0 ] && [ -z "$failures" ] && result="$result (ava exited $rc)"
    rows+=("$label|$s|$result|$took")
    echo "=== $label: $s: $result in $took s"
  done
done

echo
echo "Server matrix ($((SECONDS - total_started)) s in all):"
printf '| %-14s | %-18s | %-40s | %6s |\n' server suite result time
printf '| %-14s | %-18s | %-40s | %6s |\n' -------------- ------------------ ---------------------------------------- ------
for row in "${rows[@]}"; do
  IFS='|' read -r label s result took <<<"$row"
  printf '| %-14s | %-18s | %-40s | %5ss |\n' "$label" "$s" "$result" "$took"
done
# The plain closing line scripts/test.sh reads.
echo "servers: $sum_passed passed, $sum_failed failed, $sum_skipped skipped"
exit $failed
