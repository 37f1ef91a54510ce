#!/usr/bin/env bash
# Pack benchmark: sqfuse pack vs mksquashfs on the same tree at the same
# compressor, level, block size and thread count. Prints wall time, image
# size and peak RSS for each, and the ratios (sqfuse / mksquashfs).
#
#   tools/bench/pack-bench.sh [SOURCE] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=${1:-/usr/share}
J=${2:-$(nproc)}
WORK=${BENCH_DIR:-/var/tmp/sqfuse-bench}
mkdir -p "$WORK"
command -v mksquashfs >/dev/null || { apt-get update -qq && apt-get install -y -qq squashfs-tools >/dev/null; }
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet
SQFUSE=$PWD/target/release/sqfuse
# Warm the source into the page cache so both read it from memory.
tar -cf - -C "$SRC" . 2>/dev/null | wc -c >/dev/null

run() { # label command...
    local label=$1; shift
    rm -f "$WORK/out.sqfs"
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null 2>&1
    read -r secs kb < "$WORK/time"
    echo "$label $secs $kb $(stat -c %s "$WORK/out.sqfs")"
}

echo "| settings | tool | seconds | image MiB | peak RSS MiB |"
echo "|---|---|---|---|---|"
for cfg in "zstd 3" "gzip 9" "xz 6"; do
    set -- $cfg; c=$1; l=$2
    case $c in
        zstd) mopt=(-comp zstd -Xcompression-level "$l") ;;
        gzip) mopt=(-comp gzip -Xcompression-level "$l") ;;
        xz) mopt=(-comp xz) ;;
    esac
    s=$(run sqfuse "$SQFUSE" pack "$SRC" "$WORK/out.sqfs" -q -c "$c" -l "$l" -b 128K -j "$J")
    m=$(run mksquashfs mksquashfs "$SRC" "$WORK/out.sqfs" -noappend -no-progress -quiet -b 131072 -processors "$J" "${mopt[@]}")
    for r in "$s" "$m"; do
        set -- $r
        printf "| %s %s, 128K, -j%s | %s | %.2f | %.1f | %.0f |\n" "$c" "$l" "$J" "$1" "$2" "$(echo "$4/1048576" | bc -l)" "$(echo "$3/1024" | bc -l)"
    done
    set -- $s; st=$2; sm=$3; ss=$4
    set -- $m
    printf "| ratio sqfuse/mksquashfs | | %.2f | %.3f | %.3f |\n" "$(echo "$st/$2" | bc -l)" "$(echo "$ss/$4" | bc -l)" "$(echo "$sm/$3" | bc -l)"
done
echo
echo "source: $SRC ($(du -sh "$SRC" | cut -f1)); machine: $(nproc) cores; $(mksquashfs -version | head -1)"
