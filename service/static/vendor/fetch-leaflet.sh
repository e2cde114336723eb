#!/bin/sh
# Re-creates service/static/vendor/leaflet/ from the npm registry (run by `make vendor`).
# The pages load these files from /static/vendor/leaflet/ only: no CDN at run time.
set -eu
VERSION=1.9.4
# npm's published integrity of leaflet-1.9.4.tgz (`npm view leaflet@1.9.4 dist.integrity`).
INTEGRITY=sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack --silent "leaflet@$VERSION" >/dev/null
TARBALL=leaflet-$VERSION.tgz
GOT="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | openssl base64 -A)"
if [ "$GOT" != "$INTEGRITY" ]; then
    echo "leaflet $VERSION: integrity mismatch ($GOT)" >&2
    exit 1
fi
tar xzf "$TARBALL"
OUT="$HERE/leaflet"
rm -rf "$OUT"
mkdir -p "$OUT/images"
cp package/dist/leaflet.js package/dist/leaflet.css package/LICENSE "$OUT/"
cp package/dist/images/*.png "$OUT/images/"
echo "$VERSION" >"$OUT/VERSION"
echo "leaflet $VERSION -> $OUT"
