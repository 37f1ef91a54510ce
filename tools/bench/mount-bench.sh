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
command -v mksquashfs >/dev/null && command -v squashfuse_ll >/dev/null && command -v fio >/dev/null || {
    apt-get update -qq && apt-get install -y -qq squashfs-tools squashfuse fuse3 fio bc >/dev/null; }
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

# Random 4 KiB reads (IOPS, higher is better), time to mount, server RSS
# after a cold tar of the tree.
declare -A IOPS MOUNT_T RSS
for tool in $TOOLS; do
    for r in $(seq "$ROUNDS"); do
        do_mount "$tool" "$WORK/big.sqfs"; drop
        iops=$(fio --name=r --filename="$MNT/blob" --rw=randread --bs=4k --numjobs=4 --time_based --runtime=8 \
            --group_reporting --readonly --ioengine=psync --output-format=terse 2>/dev/null | awk -F';' '{print $8}')
        do_umount
        if [ -z "${IOPS[$tool]:-}" ] || [ "${iops:-0}" -gt "${IOPS[$tool]}" ]; then IOPS[$tool]=${iops:-0}; fi
        drop
        t0=$(date +%s.%N); do_mount "$tool" "$WORK/share.sqfs"; t1=$(date +%s.%N)
        dt=$(echo "$t1 - $t0" | bc)
        if [ -z "${MOUNT_T[$tool]:-}" ] || (( $(echo "$dt < ${MOUNT_T[$tool]}" | bc) )); then MOUNT_T[$tool]=$dt; fi
        ( cd "$MNT" && tar -cf - . | wc -c ) >/dev/null
        pid=$(pgrep -n -f "$( [ "$tool" = sqfuse ] && echo "$SQFUSE" || echo squashfuse_ll ) $WORK/share.sqfs" || true)
        if [ -n "$pid" ]; then RSS[$tool]=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status"); fi
        do_umount
    done
done

echo "| workload | sqfuse s | squashfuse_ll s | kernel s | sqfuse/squashfuse_ll | sqfuse/kernel |"
echo "|---|---|---|---|---|---|"
for label in "cold tar of /usr/share" "cold sequential read, 1 GiB file" "cold find -ls" "cold parallel cat (xargs -P8)"; do
    s=${BEST[$label/sqfuse]}; q=${BEST[$label/squashfuse_ll]}; k=${BEST[$label/kernel]}
    printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n" "$label" "$s" "$q" "$k" "$(echo "$s / $q" | bc -l)" "$(echo "$s / $k" | bc -l)"
done
printf "| time to mount (s) | %.3f | %.3f | %.3f | %.2f | %.2f |\n" "${MOUNT_T[sqfuse]}" "${MOUNT_T[squashfuse_ll]}" "${MOUNT_T[kernel]}" \
    "$(echo "${MOUNT_T[sqfuse]} / ${MOUNT_T[squashfuse_ll]}" | bc -l)" "$(echo "${MOUNT_T[sqfuse]} / ${MOUNT_T[kernel]}" | bc -l)"
echo
echo "| random 4 KiB reads, 4 jobs, 8 s | sqfuse | squashfuse_ll | kernel |"
echo "|---|---|---|---|"
echo "| IOPS (higher is better) | ${IOPS[sqfuse]} | ${IOPS[squashfuse_ll]} | ${IOPS[kernel]} |"
echo "| server peak RSS after cold tar, KiB | ${RSS[sqfuse]:-?} | ${RSS[squashfuse_ll]:-?} | (in kernel) |"
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); best of $ROUNDS rounds"
