#!/bin/sh
# Vendor axe-core's minified build from the npm registry (the browser tests inject it).
set -eu
version="${1:-4.14.1}"
here="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack "axe-core@$version" >/dev/null
tar xzf "axe-core-$version.tgz"
mkdir -p "$here/static/vendor/axe-core"
cp package/axe.min.js package/LICENSE "$here/static/vendor/axe-core/"
echo "axe-core $version → static/vendor/axe-core/axe.min.js"
