#!/usr/bin/env bash
# Builds the newest peers from source for the benchmark: squashfs-tools
# 4.7.x (mksquashfs, unsquashfs) and squashfuse 0.6.x (multithreaded
# squashfuse_ll), into PREFIX/bin, from their sources in a temporary folder
# that is removed afterwards (their code is never committed here).
#
#   tools/bench/peers.sh PREFIX
#
# Sources: a local mirror when there is one (PEER_MIRROR, default
# /work/.mirror, laid out as OWNER+NAME/repo, as the search tool's fetch
# leaves them), else a clone from GitHub. The newest tag of each series
# is built (PEER_SQUASHFS_TOOLS default 4.7, PEER_SQUASHFUSE default 0.6).
# Prints "mksquashfs VERSION" and "squashfuse VERSION" when done.
set -euo pipefail
PREFIX=${1:?usage: peers.sh PREFIX}
MIRROR=${PEER_MIRROR:-/work/.mirror}
mkdir -p "$PREFIX/bin"
PREFIX=$(cd "$PREFIX" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

need=()
for p in autoconf automake libtool pkg-config make gcc libfuse3-dev zlib1g-dev \
    liblzma-dev liblz4-dev libzstd-dev liblzo2-dev; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "peers.sh: installing ${need[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# clone OWNER/NAME DIR: from the mirror if present, else GitHub.
clone() {
    local m="$MIRROR/${1/\//+}/repo"
    if [ -d "$m" ]; then
        git clone -q "$m" "$2"
    else
        git clone -q "https://github.com/$1" "$2"
    fi
}
# newest_tag DIR SERIES: the highest tag of SERIES (4.7 -> 4.7.5).
newest_tag() {
    git -C "$1" tag | grep -E "^$2(\.[0-9]+)*\$" | sort -V | tail -1
}

clone plougher/squashfs-tools "$TMP/st"
st=$(newest_tag "$TMP/st" "${PEER_SQUASHFS_TOOLS:-4.7}")
git -C "$TMP/st" checkout -q "$st"
make -s -C "$TMP/st/squashfs-tools" -j"$(nproc)" \
    GZIP_SUPPORT=1 XZ_SUPPORT=1 LZO_SUPPORT=1 LZ4_SUPPORT=1 ZSTD_SUPPORT=1 >/dev/null
install -m755 "$TMP/st/squashfs-tools/mksquashfs" "$TMP/st/squashfs-tools/unsquashfs" "$PREFIX/bin/"

clone vasi/squashfuse "$TMP/sf"
sf=$(newest_tag "$TMP/sf" "${PEER_SQUASHFUSE:-0.6}")
git -C "$TMP/sf" checkout -q "$sf"
(
    cd "$TMP/sf"
    ./autogen.sh >/dev/null 2>&1
    # Static libsquashfuse: the binaries stand alone once copied out.
    # Compressors are found by configure (all five with the -dev packages).
    ./configure -q --disable-shared >/dev/null
    make -s -j"$(nproc)" >/dev/null 2>&1
)
install -m755 "$TMP/sf/squashfuse_ll" "$TMP/sf/squashfuse" "$PREFIX/bin/"
echo "mksquashfs $st"
echo "squashfuse $sf"
