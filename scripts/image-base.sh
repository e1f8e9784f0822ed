#!/usr/bin/env bash
# The local base image of `make image-test`: Debian bookworm minbase + python3 (3.11) + python3-venv
# + ca-certificates, made by mmdebstrap, imported into the containers storage (podman import) as
# localhost/nlu-ci-test-base:bookworm, and printed. Stands in for python:3.11-slim where no registry
# is reachable. The machine's CA bundle is copied in and pip is pointed at it (/etc/pip.conf), so
# the image build reaches the package index through an intercepting proxy too.
# Cached: var/image-test/base-<key>.tar, key = this script + the CA bundle; a re-run only imports
# (or does nothing when the image already holds that key as its label).
#   scripts/image-base.sh            MIRROR=http://deb.debian.org/debian by default; needs root
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ca=/etc/ssl/certs/ca-certificates.crt
mirror=${MIRROR:-http://deb.debian.org/debian}
image=localhost/nlu-ci-test-base:bookworm
cache="$here/var/image-test"
key=$(cat "$0" "$ca" | sha256sum | cut -c1-16)
tar="$cache/base-$key.tar"
if [ "$(podman image inspect --format '{{ index .Labels "nlu-ci.base-key" }}' "$image" 2>/dev/null)" = "$key" ]; then
  echo "$image"; exit 0
fi
mkdir -p "$cache"
if [ ! -s "$tar" ]; then
  rm -f "$cache"/base-*.tar
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook="cp $ca \"\$1/etc/ssl/certs/ca-certificates.crt\"" \
    --customize-hook='printf "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n" > "$1/etc/pip.conf"' \
    --format=tar bookworm "$tar.part" "$mirror" >&2
  mv "$tar.part" "$tar"
fi
podman import --quiet --change "LABEL nlu-ci.base-key=$key" --change 'CMD ["/bin/bash"]' "$tar" "$image" >&2
echo "$image"
