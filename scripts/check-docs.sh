#!/usr/bin/env bash
# The API reference cannot go stale: regenerates it from the types (TypeDoc, typedoc.json) into a
# temporary directory and fails if it differs from the checked-in docs/api/. TypeDoc also fails here
# on a public name left without a doc comment, on a public type that references one that is not
# exported, and on a broken {@link}. Then the published declarations (dist/, from `npm run build`)
# must type-check on their own, without skipLibCheck: stripInternal must not leave a declaration
# naming a type it removed. npm test runs this right after lint.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

npx typedoc --out "$tmp/api" --logLevel Warn
if ! diff -r -u docs/api "$tmp/api" >"$tmp/diff"; then
  head -n 80 "$tmp/diff"
  echo
  echo "check-docs: docs/api/ is stale: it differs from what TypeDoc makes of src/ now (diff above)."
  echo "check-docs: run \`npm run docs:api\` and commit docs/api/."
  exit 1
fi
echo "check-docs: docs/api/ matches the types"

if [ ! -f dist/index.d.ts ]; then
  echo "check-docs: dist/index.d.ts is missing: run \`npm run build\` first (npm test does)"
  exit 1
fi
npx tsc --noEmit --skipLibCheck false --strict --module nodenext --moduleResolution nodenext \
  --target es2022 --lib es2023,esnext.disposable --types node dist/index.d.ts
echo "check-docs: dist/index.d.ts type-checks on its own"
