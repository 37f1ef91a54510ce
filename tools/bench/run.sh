#!/usr/bin/env bash
# The benchmark: sqfuse against what users would pick instead, every
# contender measured in the same run, interleaved, best of ROUNDS.
#
#   sudo tools/bench/run.sh [ROUNDS]        (default 3)
#
# Mount: sqfuse vs squashfuse_ll vs the kernel driver (loop), on images made
# by mksquashfs with zstd (so only the reader differs), page cache dropped
# before every cold run. Pack: sqfuse pack vs mksquashfs on /usr/share at
# the same compressor, level, block size and thread count. Installs what it
# needs (Debian), builds the data sets once (in $BENCH_DIR, default
# /var/tmp/sqfuse-bench), then writes docs/benchmarks.md and
# docs/benchmarks.svg (tools/bench/report.py) and prints the tables.
# Verity: the same mount and pack workloads with and without a dm-verity
# tree (sqfuse only), as the overhead of checking every block.
# Layers: /usr/share (plus the 1 GiB file) dealt file by file into a
# 5-layer stack, every directory in every layer so each one merges; sqfuse
# mounting the stack vs fuse-overlayfs over five squashfuse_ll mounts vs
# the kernel's overlayfs over five loop mounts vs sqfuse on the flattened
# image.
# Scale: a synthetic tree of 300k small files in 2k directories plus one
# directory of 100k empty files (tools/bench/scale-tree.py): pack time and
# peak RSS vs mksquashfs; mounted (mksquashfs's image): cold find -ls, 2000
# random stats in the 100k directory, server peak RSS.
# Every mount workload also records CPU seconds: the FUSE server's
# user+sys, and the whole machine's busy time (all three tools; the kernel
# driver decompresses in the reader's context, so only this counts it).
# Peers: PEERS=source builds squashfs-tools 4.7.x and squashfuse 0.6.x
# from source (tools/bench/peers.sh, into $BENCH_DIR/peers, sources in a
# temporary folder) and puts them first in PATH; default: Debian's.
# Knobs: BENCH_DIR, BENCH_OUT (results file), SKIP_PACK=1, SKIP_MOUNT=1,
# SKIP_VERITY=1, SKIP_LAYERS=1, SKIP_SCALE=1, PEERS=source,
# PACK_SETTINGS="zstd:3 gzip:9 xz:6".
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
WORK=${BENCH_DIR:-/var/tmp/sqfuse-bench}
OUT=${BENCH_OUT:-$WORK/results.tsv}
mkdir -p "$WORK"

# shellcheck source=tools/bench/lib.sh
. tools/bench/lib.sh
bench_setup run.sh debian mksquashfs:squashfs-tools squashfuse_ll:squashfuse fusermount3:fuse3 fuse-overlayfs:fuse-overlayfs fio:fio /usr/bin/time:time python3:python3
MNT=$WORK/mnt
mkdir -p "$MNT"

# ---- data sets, made once ------------------------------------------------
if [ ! -f "$WORK/share.sqfs" ]; then
    echo "building share.sqfs (mksquashfs /usr/share, zstd)" >&2
    mksquashfs /usr/share "$WORK/share.sqfs" -comp zstd -quiet -no-progress >/dev/null
fi
if [ ! -f "$WORK/big.sqfs" ]; then
    echo "building big.sqfs (1 GiB of concatenated /usr/lib files, zstd)" >&2
    mkdir -p "$WORK/big"
    # head closes the pipe early on purpose: SIGPIPE upstream is expected.
    { find /usr/lib -type f -size +100k -print0 | sort -z | xargs -0 cat 2>/dev/null || true; } \
        | head -c 1073741824 >"$WORK/big/blob" || true
    mksquashfs "$WORK/big" "$WORK/big.sqfs" -comp zstd -quiet -no-progress >/dev/null
fi

for img in share big; do
    # The same image with a tree appended: only the checking differs.
    if [ ! -f "$WORK/$img-verity.sqfs.roothash" ]; then
        cp "$WORK/$img.sqfs" "$WORK/$img-verity.sqfs"
        "$SQFUSE" verity "$WORK/$img-verity.sqfs" --roothash "$WORK/$img-verity.sqfs.roothash" >/dev/null
    fi
done

if [ -z "${SKIP_SCALE:-}" ] && [ ! -f "$WORK/scale.sqfs" ]; then
    echo "building the scale tree (400k entries) and scale.sqfs" >&2
    rm -rf "$WORK/scale" && python3 tools/bench/scale-tree.py "$WORK/scale"
    mksquashfs "$WORK/scale" "$WORK/scale.sqfs" -comp zstd -quiet -no-progress >/dev/null
    # 2000 names in the 100k directory, spread over it, in a fixed order.
    python3 -c 'import random; r = random.Random(5); print("\n".join(f"many/empty-{r.randrange(100000):06}" for _ in range(2000)))' >"$WORK/scale-stats"
fi

if [ -z "${SKIP_LAYERS:-}" ] && [ ! -f "$WORK/layers/flat.sqfs" ]; then
    echo "building the 5-layer stack (hard links into layer trees, mksquashfs each)" >&2
    rm -rf "$WORK/layers" && mkdir -p "$WORK/layers"
    python3 - "$WORK/layers" <<'PY'
import os, sys
out = sys.argv[1]
roots = [("/usr/share", ""), (os.path.join(os.path.dirname(out), "big"), "big")]
for k in range(5):
    os.makedirs(f"{out}/l{k}", exist_ok=True)
os.makedirs(f"{out}/flat", exist_ok=True)
n = 0
for src, prefix in roots:
    for d, dirs, files in os.walk(src):
        dirs.sort()
        r = os.path.relpath(d, src)
        r = "" if r == "." else r
        rel = os.path.join(prefix, r) if prefix else r
        for t in [f"l{k}" for k in range(5)] + ["flat"]:
            os.makedirs(os.path.join(out, t, rel), exist_ok=True)
        for f in sorted(files):
            p = os.path.join(d, f)
            k = n % 5
            n += 1
            for t in (f"l{k}", "flat"):
                dst = os.path.join(out, t, rel, f)
                if os.path.islink(p):
                    os.symlink(os.readlink(p), dst)
                elif os.path.isfile(p):
                    os.link(p, dst)
PY
    for t in l0 l1 l2 l3 l4 flat; do
        mksquashfs "$WORK/layers/$t" "$WORK/layers/$t.sqfs" -comp zstd -quiet -no-progress >/dev/null
        rm -rf "${WORK:?}/layers/$t"
    done
fi

# ---- helpers --------------------------------------------------------------
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$OUT"; } # section workload tool value
do_mount() { # tool image
    case $1 in
        sqfuse) "$SQFUSE" "$2" "$MNT" ;;
        sqfuse+verity) "$SQFUSE" "$2" "$MNT" -o "verity_roothash_file=$2.roothash" ;;
        squashfuse_ll) squashfuse_ll "$2" "$MNT" ;;
        kernel) mount -t squashfs -o loop,ro "$2" "$MNT" ;;
    esac
}
do_umount() { umount "$MNT" 2>/dev/null || { sleep 0.5; umount -l "$MNT"; }; sleep 0.2; }
LAYERS=$WORK/layers
# A stack mount (top layer l4 first): one process, or N+1, or the kernel.
stack_mount() { # tool
    local k lower=()
    case $1 in
        sqfuse-layered) "$SQFUSE" "$LAYERS"/l{4,3,2,1,0}.sqfs "$MNT" ;;
        sqfuse-flat) "$SQFUSE" "$LAYERS/flat.sqfs" "$MNT" ;;
        fuse-overlayfs | kernel-overlayfs)
            for k in 4 3 2 1 0; do
                mkdir -p "$LAYERS/m$k"
                if [ "$1" = kernel-overlayfs ]; then
                    mount -t squashfs -o loop,ro "$LAYERS/l$k.sqfs" "$LAYERS/m$k"
                else
                    squashfuse_ll "$LAYERS/l$k.sqfs" "$LAYERS/m$k"
                fi
                lower+=("$LAYERS/m$k")
            done
            local lowerdir
            lowerdir=$(IFS=:; echo "${lower[*]}")
            if [ "$1" = kernel-overlayfs ]; then
                mount -t overlay overlay -o "lowerdir=$lowerdir" "$MNT"
            else
                fuse-overlayfs -o "lowerdir=$lowerdir" "$MNT"
            fi
            ;;
    esac
}
stack_umount() {
    do_umount
    local k
    for k in 4 3 2 1 0; do
        umount "$LAYERS/m$k" 2>/dev/null || true
    done
}
# CPU seconds (user+sys) of every FUSE server of a stack mount, so far.
stack_cpu() {
    local pids p t=0
    pids=$(pgrep -f -- "($MNT|$LAYERS/m[0-9])\$" || true)
    for p in $pids; do
        t=$(awk -v t="$t" '{print t + ($14 + $15) / '"$(getconf CLK_TCK)"'}' "/proc/$p/stat")
    done
    echo "$t"
}
stack_rss() { # total peak RSS (MiB) of the stack's FUSE servers
    local pids p t=0
    pids=$(pgrep -f -- "($MNT|$LAYERS/m[0-9])\$" || true)
    for p in $pids; do
        t=$(awk -v t="$t" '/VmHWM/ {print t + $2 / 1024}' "/proc/$p/status")
    done
    echo "$t"
}
lcold() { # workload tool command
    local w=$1 tool=$2 cmd=$3 t0
    stack_mount "$tool"
    drop
    t0=$(now)
    (cd "$MNT" && eval "$cmd") >/dev/null
    record layers "$w" "$tool" "$(since "$t0")"
    [ "${tool%overlayfs}" = kernel- ] || record layerscpu "$w" "$tool" "$(stack_cpu)"
    stack_umount
}
server_pid() { pgrep -n -f -- " $MNT\$" || true; }
# CPU seconds (user+sys) a process has used so far.
proc_cpu() { awk '{printf "%.2f", ($14 + $15) / '"$(getconf CLK_TCK)"'}' "/proc/$1/stat"; }
# CPU seconds the whole machine has been busy so far (all but idle, iowait).
busy_cpu() { awk '/^cpu / {printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / '"$(getconf CLK_TCK)"'}' /proc/stat; }

pack_run() { # settings tool command...
    local s=$1 tool=$2 secs kb
    shift 2
    rm -f "$WORK/out.sqfs"
    # No run pays for the previous one's writeback (sqfuse fsyncs its
    # image before renaming it; mksquashfs leaves it dirty).
    sync
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >/dev/null 2>&1
    read -r secs kb <"$WORK/time"
    record pack "$s" "$tool" "$secs"
    record packsize "$s" "$tool" "$(stat -c %s "$WORK/out.sqfs")"
    record packrss "$s" "$tool" "$(echo "$kb / 1024" | bc -l)"
}

# Peak RSS of the mounted server after a cold run of the command.
peak_rss() { # workload tool command
    local pid
    drop
    (cd "$MNT" && eval "$3") >/dev/null
    pid=$(server_pid)
    if [ "$2" != kernel ] && [ -n "$pid" ]; then
        record rss "$1" "$2" "$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")"
    fi
}

# One cold run: mount, drop caches, time the command in the mount, unmount.
# Records the wall time, and (section mountcpu, mountbusy) the server's CPU
# seconds during the command and the machine's.
cold() { # workload tool image command
    local w=$1 tool=$2 img=$3 cmd=$4 t0 pid c0 b0
    do_mount "$tool" "$img"
    drop
    pid=$(server_pid)
    [ "$tool" != kernel ] && [ -n "$pid" ] && c0=$(proc_cpu "$pid")
    b0=$(busy_cpu)
    t0=$(now)
    (cd "$MNT" && eval "$cmd") >/dev/null
    record "${SECTION:-mount}" "$w" "$tool" "$(since "$t0")"
    if [ -z "${SECTION:-}" ]; then
        record mountbusy "$w" "$tool" "$(echo "$(busy_cpu) - $b0" | bc)"
        [ -n "${c0:-}" ] && record mountcpu "$w" "$tool" "$(echo "$(proc_cpu "$pid") - $c0" | bc)"
        # What the run asked of the server, by request type (sqfuse counts them).
        if [ "$tool" = sqfuse ]; then
            getfattr -n user.sqfuse.stats --only-values "$MNT" 2>/dev/null |
                while read -r k v; do
                    case $k in
                        lookup | getattr | readlink | read | readdirplus | fill_ahead_files | blocks_decompressed | bytes_decompressed)
                            record requests "$w" "$k" "$v" ;;
                    esac
                done
        fi
    fi
    do_umount
}
vcold() { SECTION=verity cold "$@"; }

: >"$OUT"
{
    echo -e "#machine\t$(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, Linux $(uname -r)"
    sfv=$( (squashfuse_ll --version 2>&1 || true) | sed -n 's/^squashfuse \([0-9.]*\).*/\1/p' | head -1)
    echo -e "#versions\tsqfuse $(git rev-parse --short HEAD 2>/dev/null || echo ?), $(mksquashfs -version 2>&1 | head -1 | sed 's/ (.*//'), squashfuse_ll ${sfv:-$(dpkg-query -W -f '${Version}' squashfuse 2>/dev/null || echo ?)}$([ "${PEERS:-}" = source ] && echo ' (peers built from source)'), fio $(fio --version)"
    echo -e "#data\t/usr/share: $(du -sm /usr/share | cut -f1) MiB, $(find /usr/share | wc -l) entries; share.sqfs $(($(stat -c %s "$WORK/share.sqfs") >> 20)) MiB; big.sqfs $(($(stat -c %s "$WORK/big.sqfs") >> 20)) MiB (1 GiB file)"
    echo -e "#rounds\t$ROUNDS"
} >>"$OUT"

TOOLS=(sqfuse squashfuse_ll kernel)
if [ -z "${SKIP_MOUNT:-}" ]; then
    for r in $(seq "$ROUNDS"); do
        echo "mount round $r/$ROUNDS" >&2
        for tool in "${TOOLS[@]}"; do
            S=$WORK/share.sqfs B=$WORK/big.sqfs
            cold "cold tar -cf - . | wc -c (/usr/share)" "$tool" "$S" 'tar -cf - . | wc -c'
            cold "cold parallel cat, xargs -P8 (/usr/share)" "$tool" "$S" 'find . -type f -print0 | xargs -0 -P8 -n64 cat | wc -c'
            cold "cold find -ls (/usr/share)" "$tool" "$S" 'find . -ls | wc -l'
            cold "cold sequential read, 1 GiB file (dd bs=1M)" "$tool" "$B" 'dd if=blob of=/dev/null bs=1M status=none'
            cold "cold sequential read, 1 GiB file (cat | wc -c)" "$tool" "$B" 'cat blob | wc -c'

            # Random 4 KiB reads for 8 s, 4 jobs (IOPS, higher is better).
            do_mount "$tool" "$B"
            drop
            iops=$(fio --name=r --filename="$MNT/blob" --rw=randread --bs=4k --numjobs=4 \
                --time_based --runtime=8 --group_reporting --readonly --ioengine=psync \
                --output-format=terse 2>/dev/null | awk -F';' '{print $8}')
            record iops "fio 4 KiB random reads, 4 jobs, 8 s (IOPS)" "$tool" "${iops:-0}"
            do_umount

            # Time to mount, everything cold (programs too), then warm.
            drop
            t0=$(now)
            do_mount "$tool" "$WORK/share.sqfs"
            record mount "time to mount, caches dropped" "$tool" "$(since "$t0")"
            do_umount
            t0=$(now)
            do_mount "$tool" "$WORK/share.sqfs"
            record mount "time to mount, warm" "$tool" "$(since "$t0")"
            peak_rss "server peak RSS after a cold tar (MiB)" "$tool" 'tar -cf - . | wc -c'
            do_umount
        done
    done
fi

if [ -z "${SKIP_PACK:-}" ]; then
    J=$(nproc)
    # The source read from memory by both: warm it once.
    tar -cf - -C /usr/share . 2>/dev/null | wc -c >/dev/null
    for r in $(seq "$ROUNDS"); do
        echo "pack round $r/$ROUNDS" >&2
        for cfg in ${PACK_SETTINGS:-zstd:3 gzip:9 xz:6}; do
            c=${cfg%%:*} l=${cfg##*:}
            case $c in
                xz) mopt=(-comp xz) ;; # mksquashfs's xz has no level option: preset 6
                *) mopt=(-comp "$c" -Xcompression-level "$l") ;;
            esac
            s="/usr/share, $c $l, 128 KiB blocks, $J threads"
            pack_run "$s" sqfuse "$SQFUSE" pack /usr/share "$WORK/out.sqfs" -q -c "$c" -l "$l" -b 128K -j "$J"
            pack_run "$s" mksquashfs mksquashfs /usr/share "$WORK/out.sqfs" -noappend -no-progress -quiet \
                -b 131072 -processors "$J" "${mopt[@]}"
        done
        # mksquashfs's own line, run by both: sqfuse called as mksquashfs
        # (its squashfs-tools engine: the same bytes, so the same work).
        mkdir -p "$WORK/as-tool"
        ln -sf "$SQFUSE" "$WORK/as-tool/mksquashfs"
        for c in ${AS_MKSQUASHFS_COMPS:-gzip xz}; do
            s="/usr/share, mksquashfs's line -comp $c (sqfuse called as mksquashfs), $J threads"
            pack_run "$s" sqfuse "$WORK/as-tool/mksquashfs" /usr/share "$WORK/out.sqfs" -noappend -quiet \
                -processors "$J" -comp "$c" -mkfs-time 0
            pack_run "$s" mksquashfs mksquashfs /usr/share "$WORK/out.sqfs" -noappend -no-progress -quiet \
                -processors "$J" -comp "$c" -mkfs-time 0
        done
        # From a cold disk: the page cache dropped before each run.
        s="/usr/share, zstd 3, 128 KiB blocks, $J threads, page cache dropped"
        drop
        pack_run "$s" sqfuse "$SQFUSE" pack /usr/share "$WORK/out.sqfs" -q -c zstd -l 3 -b 128K -j "$J"
        drop
        pack_run "$s" mksquashfs mksquashfs /usr/share "$WORK/out.sqfs" -noappend -no-progress -quiet \
            -b 131072 -processors "$J" -comp zstd -Xcompression-level 3
        tar -cf - -C /usr/share . 2>/dev/null | wc -c >/dev/null
    done
    rm -f "$WORK/out.sqfs"
fi

if [ -z "${SKIP_SCALE:-}" ]; then
    J=$(nproc)
    for r in $(seq "$ROUNDS"); do
        echo "scale round $r/$ROUNDS" >&2
        tar -cf - -C "$WORK/scale" . 2>/dev/null | wc -c >/dev/null
        s="scale tree (300k small files in 2k dirs + 100k empty files), zstd 3, 128 KiB blocks, $J threads"
        pack_run "$s" sqfuse "$SQFUSE" pack "$WORK/scale" "$WORK/out.sqfs" -q -c zstd -l 3 -b 128K -j "$J"
        pack_run "$s" mksquashfs mksquashfs "$WORK/scale" "$WORK/out.sqfs" -noappend -no-progress -quiet \
            -b 131072 -processors "$J" -comp zstd -Xcompression-level 3
        rm -f "$WORK/out.sqfs"
        for tool in "${TOOLS[@]}"; do
            cold "cold find -ls (scale tree)" "$tool" "$WORK/scale.sqfs" 'find . -ls | wc -l'
            cold "cold stat of 2000 random names in a 100k-entry directory (scale tree)" "$tool" "$WORK/scale.sqfs" \
                "xargs -a '$WORK/scale-stats' stat -c %i | wc -l"
            do_mount "$tool" "$WORK/scale.sqfs"
            peak_rss "server peak RSS after a cold find -ls (scale tree, MiB)" "$tool" 'find . -ls | wc -l'
            do_umount
        done
    done
fi

if [ -z "${SKIP_VERITY:-}" ]; then
    J=$(nproc)
    for r in $(seq "$ROUNDS"); do
        echo "verity round $r/$ROUNDS" >&2
        for tool in sqfuse sqfuse+verity; do
            suffix=${tool#sqfuse}
            S=$WORK/share${suffix:+-verity}.sqfs B=$WORK/big${suffix:+-verity}.sqfs
            vcold "cold tar -cf - . | wc -c (/usr/share)" "$tool" "$S" 'tar -cf - . | wc -c'
            vcold "cold parallel cat, xargs -P8 (/usr/share)" "$tool" "$S" 'find . -type f -print0 | xargs -0 -P8 -n64 cat | wc -c'
            vcold "cold sequential read, 1 GiB file (dd bs=1M)" "$tool" "$B" 'dd if=blob of=/dev/null bs=1M status=none'
            # Pack: the tree is hashed once the image is written. The cold
            # runs above dropped the source from the page cache: warm it.
            tar -cf - -C /usr/share . 2>/dev/null | wc -c >/dev/null
            rm -f "$WORK/out.sqfs"
            sync
            /usr/bin/time -f "%e" -o "$WORK/time" "$SQFUSE" pack /usr/share "$WORK/out.sqfs" -q -c zstd -l 3 -b 128K -j "$J" \
                ${suffix:+--verity --verity-salt 00} >/dev/null 2>&1
            record verity "pack /usr/share, zstd 3, 128 KiB blocks, $J threads (warm)" "$tool" "$(cat "$WORK/time")"
        done
    done
    rm -f "$WORK/out.sqfs"
fi

if [ -z "${SKIP_LAYERS:-}" ]; then
    for r in $(seq "$ROUNDS"); do
        echo "layers round $r/$ROUNDS" >&2
        for tool in sqfuse-layered fuse-overlayfs kernel-overlayfs sqfuse-flat; do
            lcold "cold find -ls (5 layers of /usr/share)" "$tool" 'find . -ls | wc -l'
            lcold "cold tar -cf - . | wc -c (5 layers of /usr/share)" "$tool" 'tar -cf - . | wc -c'
            stack_mount "$tool"
            drop
            iops=$(fio --name=r --filename="$MNT/big/blob" --rw=randread --bs=4k --numjobs=4 \
                --time_based --runtime=8 --group_reporting --readonly --ioengine=psync \
                --output-format=terse 2>/dev/null | awk -F';' '{print $8}')
            record layersiops "fio 4 KiB random reads, 4 jobs, 8 s, 1 GiB file in one layer (IOPS)" "$tool" "${iops:-0}"
            [ "${tool%overlayfs}" = kernel- ] ||
                record layersrss "peak RSS of the FUSE servers after the run (MiB)" "$tool" "$(stack_rss)"
            stack_umount
        done
    done
fi

mkdir -p docs
python3 tools/bench/report.py "$OUT" "${BENCH_MD:-docs/benchmarks.md}" "${BENCH_SVG:-docs/benchmarks.svg}"
