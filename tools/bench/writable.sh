#!/usr/bin/env bash
# Writable mounts: sqfuse -o upper=DIR against squashfuse_ll with
# fuse-overlayfs on top (what enroot and Apptainer stack today) and kernel
# overlayfs over the kernel driver (loop), interleaved, best of ROUNDS,
# page cache dropped before each run. The upper is a directory on the
# same filesystem for all three.
#
#   sudo tools/bench/writable.sh [ROUNDS]      (default 3)
#
# Workloads: `tar x` of /usr/include (small files) into the mount; a
# build writing 10,000 small files in 100 directories; copy-up of 4 large
# lower files (one byte appended to each); a cold read of the lower tree
# (`tar cf - | wc -c`) and a launch (the interpreter importing a score of
# standard modules from the mount) from the writable mount, and from a
# read-only sqfuse mount as the floor. Prints a Markdown table of seconds and ratios.
# Knobs: BENCH_DIR (default /var/tmp/sqfuse-bench), PEERS=source (build
# squashfuse 0.6.x from source, see peers.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
# The peers are the other benchmarks' ($BENCH_DIR/peers): set up first.
WORK=${BENCH_DIR:-/var/tmp/sqfuse-bench}
mkdir -p "$WORK"
. tools/bench/lib.sh
bench_setup writable.sh system squashfuse_ll:squashfuse fuse-overlayfs:fuse-overlayfs mksquashfs:squashfs-tools
WORK=$WORK/writable
mkdir -p "$WORK"

lower=$WORK/lower.sqfs
if [ ! -f "$lower" ]; then
    mkdir -p "$WORK/src/big"
    cp -a /usr/lib/python3* "$WORK/src/"
    for k in 1 2 3 4; do head -c $((64 << 20)) /dev/urandom >"$WORK/src/big/f$k"; done
    mksquashfs "$WORK/src" "$lower" -comp zstd -quiet -no-progress -noappend
    rm -rf "$WORK/src"
fi
[ -f "$WORK/include.tar" ] || tar cf "$WORK/include.tar" -C /usr include

m=$WORK/mnt
cleanup() {
    for d in "$m/merged" "$m/lower" "$m/ro"; do
        mountpoint -q "$d" 2>/dev/null && { umount "$d" 2>/dev/null || fusermount3 -u "$d" 2>/dev/null || umount -l "$d"; }
    done
    rm -rf "$m"
}
trap cleanup EXIT

# mount_as KIND: the lower and a fresh upper, merged at $m/merged.
mount_as() {
    cleanup
    mkdir -p "$m/merged" "$m/lower" "$m/upper" "$m/work" "$m/ro"
    case $1 in
    sqfuse) "$SQFUSE" "$lower" "$m/merged" -o "upper=$m/upper" ;;
    stacked)
        squashfuse_ll "$lower" "$m/lower"
        fuse-overlayfs -o "lowerdir=$m/lower,upperdir=$m/upper,workdir=$m/work" "$m/merged" ;;
    kernel)
        mount -o loop,ro "$lower" "$m/lower"
        mount -t overlay overlay -o "lowerdir=$m/lower,upperdir=$m/upper,workdir=$m/work" "$m/merged" ;;
    readonly) "$SQFUSE" "$lower" "$m/merged" ;;
    esac
}

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }

tar_x() { tar xf "$WORK/include.tar" -C "$m/merged"; sync -f "$m/merged"; }
build() {
    python3 - "$m/merged/build" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(100):
    p = os.path.join(root, "d%03d" % d)
    os.makedirs(p)
    for f in range(100):
        with open(os.path.join(p, "o%03d.o" % f), "wb") as fh:
            fh.write(b"x" * (1024 + 37 * f))
PY
    sync -f "$m/merged"
}
copy_up() { local f; for f in 1 2 3 4; do printf x >>"$m/merged/big/f$f"; done; sync -f "$m/merged"; }
read_tree() { tar cf - -C "$m/merged" --exclude=big . | wc -c >/dev/null; }
# The interpreter is this machine's; the modules it imports (and their
# compiled .pyc) come from the mount's copy of the standard library.
launch() {
    local lib=("$m/merged"/python3.*)
    PYTHONDONTWRITEBYTECODE=1 python3 -I -S -c '
import sys
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/lib-dynload"]
import asyncio, email.parser, http.server, json, xml.dom.minidom, unittest, argparse
import decimal, sqlite3, logging.handlers, concurrent.futures, multiprocessing, csv
import urllib.request, tarfile, zipfile, inspect, pydoc, difflib, configparser
' "${lib[0]}"
}

declare -A best
for ((r = 1; r <= ROUNDS; r++)); do
    for w in tar_x build copy_up read_tree launch; do
        kinds="sqfuse stacked kernel"
        case $w in read_tree | launch) kinds="sqfuse stacked kernel readonly" ;; esac
        for k in $kinds; do
            mount_as "$k"
            drop
            t0=$(now)
            $w
            t=$(echo "$(now) - $t0" | bc)
            key="$w/$k"
            if [ -z "${best[$key]:-}" ] || [ "$(echo "$t < ${best[$key]}" | bc)" = 1 ]; then best[$key]=$t; fi
        done
    done
done
cleanup

echo "| workload (cold, best of $ROUNDS) | sqfuse | squashfuse_ll + fuse-overlayfs | kernel overlayfs | sqfuse / stacked | sqfuse / kernel |"
echo "|---|---|---|---|---|---|"
for w in tar_x build copy_up read_tree launch; do
    s=${best[$w/sqfuse]} f=${best[$w/stacked]} k=${best[$w/kernel]}
    printf '| %s | %.2f s | %.2f s | %.2f s | %.2fx | %.2fx |\n' "$w" "$s" "$f" "$k" \
        "$(echo "$s / $f" | bc -l)" "$(echo "$s / $k" | bc -l)"
done
echo
for w in read_tree launch; do
    ro=${best[$w/readonly]}
    printf '%s from a read-only sqfuse mount: %.2f s (writable / read-only: %.2fx)\n' "$w" "$ro" \
        "$(echo "${best[$w/sqfuse]} / $ro" | bc -l)"
done
