#!/usr/bin/env bash
# Runs a command while CPU hogs keep every core busy, then stops the hogs by PID, whatever happens:
#   bash scripts/under-load.sh [--hogs N] -- COMMAND...
# e.g. bash scripts/under-load.sh -- npm run test:one
# The hogs are bounded: each one exits by itself after FAIRLOCK_HOG_MAX_S seconds (default 3600).
set -euo pipefail
hogs=$(nproc 2>/dev/null || echo 2)
if [ "${1:-}" = --hogs ]; then hogs="$2"; shift 2; fi
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || { echo "usage: $0 [--hogs N] -- COMMAND..." >&2; exit 64; }
max_s=${FAIRLOCK_HOG_MAX_S:-3600}
pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap stop EXIT INT TERM
for _ in $(seq "$hogs"); do
  node -e "const end = Date.now() + ${max_s} * 1000; while (Date.now() < end) {}" &
  pids+=($!)
done
echo "under-load: ${hogs} CPU hogs running (pids ${pids[*]})" >&2
started=$SECONDS
set +e
"$@"
rc=$?
set -e
echo "under-load: '$*' exited ${rc} after $((SECONDS - started)) s" >&2
exit $rc
