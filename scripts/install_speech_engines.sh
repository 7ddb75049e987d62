#!/usr/bin/env bash
# Install the speech engines and voices `s5rf data speech` drives (model/speech_packages.txt)
# with apt-get, as root. MBROLA's and Pico's voices are in Debian's contrib and non-free
# components: where apt cannot see them, they are added from the same mirror first.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t packages < <(sed 's/#.*//; /^[[:space:]]*$/d' model/speech_packages.txt)
missing=()
for pkg in "${packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

apt-get update -qq
# A package apt has no version of (madison prints nothing) lives in contrib or non-free. Not a
# `apt-cache policy | grep -q` pipe: under pipefail, grep's early exit fails the pipeline.
unavailable=false
for pkg in "${missing[@]}"; do
    [ -n "$(apt-cache madison "$pkg")" ] || unavailable=true
done
if $unavailable; then
    . /etc/os-release
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
             | grep -E '^[[:space:]]*(URIs:|deb )' | grep -oE 'https?://[^[:space:]]+' \
             | grep -E '/debian/?$' | head -n1 || true)
    cat > /etc/apt/sources.list.d/s5rf-contrib-non-free.sources <<SOURCES
Types: deb
URIs: ${mirror:-http://deb.debian.org/debian}
Suites: ${VERSION_CODENAME}
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
