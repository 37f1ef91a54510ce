#!/usr/bin/env bash
# Mount benchmark: sqfuse vs squashfuse_ll vs the kernel driver, same images,
# same run, interleaved, best of N rounds, page cache dropped before each
# cold run. Needs root (drop_caches, loop mounts). Prints a markdown table
# of seconds and ratios (sqfuse time / other time: below 1 means faster).
#
#   sudo tools/bench/mount-bench.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
WORK=${BENCH_DIR:-/var/tmp/sqfuse-bench}
mkdir -p "$WORK"

if [ "$(id -u)" != 0 ]; then echo "run as root (drop_caches, loop mounts)" >&2; exit 2; fi
command -v mksquashfs >/dev/null && command -v squashfuse_ll >/dev/null || {
    apt-get update -qq && apt-get install -y -qq squashfs-tools squashfuse fuse3 >/dev/null; }
cargo build --release --quiet
SQFUSE=$PWD/target/release/sqfuse

# Data sets, made once by mksquashfs with zstd so only the reader differs.
[ -f "$WORK/share.sqfs" ] || mksquashfs /usr/share "$WORK/share.sqfs" -comp zstd -quiet -no-progress >/dev/null
if [ ! -f "$WORK/big.sqfs" ]; then
    mkdir -p "$WORK/big"
    # ~1 GiB of real binaries: concatenated files from /usr/lib. head closes
    # the pipe early on purpose: SIGPIPE upstream is expected.
    if [ "$(stat -c %s "$WORK/big/blob" 2>/dev/null || echo 0)" != 1073741824 ]; then
        { find /usr/lib -type f -size +100k -print0 | sort -z | xargs -0 cat 2>/dev/null || true; } \
            | head -c 1073741824 > "$WORK/big/blob" || true
    fi
    mksquashfs "$WORK/big" "$WORK/big.sqfs" -comp zstd -quiet -no-progress >/dev/null
fi

MNT=$WORK/mnt
mkdir -p "$MNT"
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
do_mount() { # tool image
    case $1 in
        sqfuse) "$SQFUSE" "$2" "$MNT" ;;
        squashfuse_ll) squashfuse_ll "$2" "$MNT" ;;
        kernel) mount -t squashfs -o loop,ro "$2" "$MNT" ;;
    esac
}
do_umount() { umount "$MNT" 2>/dev/null || umount -l "$MNT"; sleep 0.2; }

declare -A BEST
measure() { # label tool image command...
    local label=$1 tool=$2 img=$3; shift 3
    do_mount "$tool" "$img"
    drop
    local t0 t1
    t0=$(date +%s.%N)
    ( cd "$MNT" && eval "$@" ) >/dev/null
    t1=$(date +%s.%N)
    do_umount
    local dt; dt=$(echo "$t1 - $t0" | bc)
    local key="$label/$tool"
    if [ -z "${BEST[$key]:-}" ] || (( $(echo "$dt < ${BEST[$key]}" | bc) )); then BEST[$key]=$dt; fi
}

TOOLS="sqfuse squashfuse_ll kernel"
for r in $(seq "$ROUNDS"); do
    for tool in $TOOLS; do
        measure "cold tar of /usr/share" "$tool" "$WORK/share.sqfs" 'tar -cf - . | wc -c'
        measure "cold sequential read, 1 GiB file" "$tool" "$WORK/big.sqfs" 'cat blob | wc -c'
        measure "cold find -ls" "$tool" "$WORK/share.sqfs" 'find . -ls | wc -l'
        measure "cold parallel cat (xargs -P8)" "$tool" "$WORK/share.sqfs" 'find . -type f -print0 | xargs -0 -P8 -n64 cat | wc -c'
    done
done

echo "| workload | sqfuse s | squashfuse_ll s | kernel s | sqfuse/squashfuse_ll | sqfuse/kernel |"
echo "|---|---|---|---|---|---|"
for label in "cold tar of /usr/share" "cold sequential read, 1 GiB file" "cold find -ls" "cold parallel cat (xargs -P8)"; do
    s=${BEST[$label/sqfuse]}; q=${BEST[$label/squashfuse_ll]}; k=${BEST[$label/kernel]}
    printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n" "$label" "$s" "$q" "$k" "$(echo "$s / $q" | bc -l)" "$(echo "$s / $k" | bc -l)"
done
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); best of $ROUNDS rounds"
