#!/usr/bin/env bash
# Rebuild the UI's vendored graph libraries from npm (at release time; nothing is fetched at
# run time): installs the locked versions in a scratch directory and copies their built
# files, with their licences, into ../static/vendor.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$scratch/"
(cd "$scratch" && npm ci --no-audit --no-fund --silent)
out="$here/../static/vendor"
mkdir -p "$out"
cp "$scratch/node_modules/cytoscape/dist/cytoscape.min.js" \
   "$scratch/node_modules/dagre/dist/dagre.min.js" \
   "$scratch/node_modules/cytoscape-dagre/cytoscape-dagre.js" "$out/"
for p in cytoscape dagre cytoscape-dagre; do
  cp "$scratch/node_modules/$p/LICENSE" "$out/LICENSE.$p"
done
echo "vendored into $out"
