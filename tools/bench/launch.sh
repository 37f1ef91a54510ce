#!/usr/bin/env bash
# The launch benchmark: programs started from an image, the way AppImages,
# apptainer/enroot and HPC Python environments use SquashFS. One thread,
# thousands of small dependent reads; latency per request is what counts.
#
#   sudo tools/bench/launch.sh [ROUNDS]        (default 3)
#
# Programs (both trees built here from the package registries, once):
#   python: a CPython prefix (this machine's interpreter and stdlib, copied)
#           with PY_PKGS installed from PyPI, importing them all;
#   node:   a Node.js application whose node_modules holds NODE_PKGS from
#           npm, requiring them all and compiling a little TypeScript.
# Images, both made by mksquashfs 4.7.x from the same tree: xz with 1 MiB
# blocks and zstd with 128 KiB blocks.
# Contenders, interleaved in each round: sqfuse, squashfuse_ll 0.6.x, the
# kernel driver (loop), the tree in a local directory (the floor); and
# sqfuse with a start-up profile (-o preload=) on the same image, and on
# an image sqfuse packed in the profile's order (pack --order).
# Cold: page cache dropped before the mount (and for the local directory),
# timed from the mount's return; warm: the same command again. Recorded per run: wall time, the FUSE
# server's CPU seconds; once per contender, the FUSE requests by type
# (sqfuse: its request counters; squashfuse_ll: its debug log, in a run of
# its own that is not timed) and the bytes sqfuse decompressed. Also
# mount + stat + unmount, warm and with the page cache dropped.
# Results: $BENCH_DIR/launch/results.tsv, and the launch table written
# into docs/benchmarks.md (tools/bench/launch-report.py).
# Knobs: BENCH_DIR (default /var/tmp/sqfuse-bench), PEERS=debian (Debian's
# squashfuse_ll and mksquashfs instead of building 0.6.x / 4.7.x),
# PY_PKGS, NODE_PKGS, PROGRAMS="python node", KINDS="xz zstd".
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
WORK=${BENCH_DIR:-/var/tmp/sqfuse-bench}
L=$WORK/launch
OUT=${LAUNCH_OUT:-$L/results.tsv}
PY_PKGS=${PY_PKGS:-boto3 ipython flask cryptography docutils sympy numpy pandas requests sqlalchemy rich pygments jinja2}
NODE_PKGS=${NODE_PKGS:-typescript eslint webpack @babel/core express lodash moment yargs chalk}
PROGRAMS=${PROGRAMS:-python node}
KINDS=${KINDS:-xz zstd}
mkdir -p "$L"

# shellcheck source=tools/bench/lib.sh
. tools/bench/lib.sh
bench_setup launch.sh source mksquashfs:squashfs-tools squashfuse_ll:squashfuse fusermount3:fuse3 getfattr:attr \
    node:nodejs npm:npm rsync:rsync bc:bc
MNT=$L/mnt
mkdir -p "$MNT"
export PYTHONDONTWRITEBYTECODE=1 # the local directory stays as packed

# ---- the trees, made once -------------------------------------------------
T=$L/tree
if [ ! -f "$T/py/.done" ]; then
    echo "building the Python tree (interpreter copied, packages from PyPI)" >&2
    rm -rf "$T/py" && mkdir -p "$T/py"
    base=$(python3 -c 'import sys; print(sys.base_prefix)')
    ver=$(python3 -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')
    rsync -a --exclude "lib/$ver/site-packages/*" --exclude '*/test/*' "$base/" "$T/py/"
    # The interpreter's RUNPATH names the original prefix; LD_LIBRARY_PATH
    # (which RUNPATH yields to) makes it load the copy's libpython.
    export LD_LIBRARY_PATH=$T/py/lib
    "$T/py/bin/$ver" -m ensurepip >/dev/null
    # shellcheck disable=SC2086
    "$T/py/bin/$ver" -m pip install -q --no-warn-script-location --disable-pip-version-check $PY_PKGS
    unset LD_LIBRARY_PATH
    echo "$ver" >"$T/py/.done"
fi
PYVER=$(cat "$T/py/.done")
if [ ! -f "$T/node/.done" ]; then
    echo "building the Node.js tree (packages from npm)" >&2
    rm -rf "$T/node" && mkdir -p "$T/node"
    (cd "$T/node" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund $NODE_PKGS >/dev/null)
    cat >"$T/node/app.js" <<'JS'
// Start-up of a tool built on these packages: load them all, touch what
// they export.
const mods = process.argv.slice(2);
let keys = 0;
for (const m of mods) keys += Object.keys(require(m)).length;
console.log(mods.length, keys);
JS
    touch "$T/node/.done"
fi
# Module names as require() takes them.
NODE_MODS=$NODE_PKGS
for k in $KINDS; do
    img=$L/$k.sqfs
    [ -f "$img" ] && continue
    echo "building $k.sqfs (mksquashfs)" >&2
    case $k in
        xz) mksquashfs "$T" "$img" -comp xz -b 1M -quiet -no-progress >/dev/null ;;
        zstd) mksquashfs "$T" "$img" -comp zstd -b 128K -quiet -no-progress >/dev/null ;;
    esac
done

[ -n "${DATA_ONLY:-}" ] && exit 0

# ---- helpers ----------------------------------------------------------------
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { echo "$EPOCHREALTIME"; } # no process started: fine-grained
since() { echo "$(now) - $1" | bc; }
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$OUT"; } # section workload tool value
proc_cpu() { awk '{printf "%.3f", ($14 + $15) / '"$(getconf CLK_TCK)"'}' "/proc/$1/stat"; }
server_pid() { pgrep -n -f -- " $MNT( |\$)" || true; }

# program NAME ROOT: the command line that starts it from ROOT.
program() {
    case $1 in
        python)
            echo "env LD_LIBRARY_PATH=$2/py/lib $2/py/bin/$PYVER -c 'import boto3, IPython, flask, cryptography.x509, docutils.core, sympy, numpy, pandas, requests, sqlalchemy, rich.console, pygments.lexers, jinja2'"
            ;;
        node) echo "node $2/node/app.js $NODE_MODS" ;;
    esac
}

# do_mount TOOL IMAGE [PROFILE]: where the tree is seen, on stdout.
do_mount() {
    case $1 in
        local) echo "$T" && return ;;
        sqfuse) "$SQFUSE" "$2" "$MNT" >/dev/null ;;
        sqfuse+preload | sqfuse+ordered) "$SQFUSE" "$2" "$MNT" -o "preload=$3" >/dev/null ;;
        sqfuse-record) "$SQFUSE" "$2" "$MNT" -o "record=$3" >/dev/null ;;
        squashfuse_ll) squashfuse_ll "$2" "$MNT" >/dev/null ;;
        squashfuse_ll-debug) squashfuse_ll -f -d "$2" "$MNT" >/dev/null 2>"$3" & ;;
        kernel) mount -t squashfs -o loop,ro "$2" "$MNT" >/dev/null ;;
    esac
    local k
    for k in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.05; done
    echo "$MNT"
}
do_umount() { # TOOL
    [ "$1" = local ] && return
    umount "$MNT" 2>/dev/null || { sleep 0.5; umount -l "$MNT"; }
    wait_gone
}
wait_gone() { # until no server names the mountpoint
    local k
    for k in $(seq 100); do pgrep -f -- " $MNT( |\$)" >/dev/null || break; sleep 0.05; done
}

# The FUSE requests sqfuse answered, by type, and its bytes decompressed.
sqfuse_counts() { # WORKLOAD TOOL ROOT
    getfattr --only-values -n user.sqfuse.stats "$3" 2>/dev/null | while read -r k v; do
        record launchreq "$1" "$2 $k" "$v"
    done
}

# One launch: mount, drop caches, time the program cold, then warm.
launch() { # PROGRAM KIND TOOL IMAGE [PROFILE]
    local p=$1 k=$2 tool=$3 img=$4 prof=${5:-} root cmd pid c0 t0 w
    w="$p, $k"
    # Dropped before the mount, as a machine starts: a preload begins with
    # the mount (dropping after it would throw away what it brought in).
    drop
    root=$(do_mount "$tool" "$img" "$prof")
    cmd=$(program "$p" "$root")
    pid=""
    [ "$tool" != kernel ] && [ "$tool" != local ] && pid=$(server_pid)
    [ -n "$pid" ] && c0=$(proc_cpu "$pid")
    t0=$(now)
    (cd /tmp && eval "$cmd") >/dev/null 2>&1
    record launch "$w, cold" "$tool" "$(since "$t0")"
    [ -n "$pid" ] && record launchcpu "$w, cold" "$tool" "$(echo "$(proc_cpu "$pid") - $c0" | bc)"
    [ "$tool" = sqfuse ] && [ "$ROUND" = 1 ] && sqfuse_counts "$w, cold" "$tool" "$root"
    [ -n "$pid" ] && c0=$(proc_cpu "$pid")
    t0=$(now)
    (cd /tmp && eval "$cmd") >/dev/null 2>&1
    record launch "$w, warm" "$tool" "$(since "$t0")"
    [ -n "$pid" ] && record launchcpu "$w, warm" "$tool" "$(echo "$(proc_cpu "$pid") - $c0" | bc)"
    do_umount "$tool"
}

# squashfuse_ll's requests by type, from its debug log (a run not timed).
squashfuse_counts() { # PROGRAM KIND IMAGE
    local log=$L/sfll.log root cmd
    root=$(do_mount squashfuse_ll-debug "$3" "$log")
    cmd=$(program "$1" "$root")
    drop
    (cd /tmp && eval "$cmd") >/dev/null 2>&1
    do_umount squashfuse_ll
    wait 2>/dev/null || true
    sed -n 's/.*opcode: \([A-Z_]*\).*/\1/p' "$log" | tr 'A-Z' 'a-z' | sort | uniq -c |
        while read -r n op; do record launchreq "$1, $2, cold" "squashfuse_ll $op" "$n"; done
    rm -f "$log"
}

# Profiles: recorded on each image by running the program once (again on
# every run: a profile names the exact image it was recorded on); an image
# packed in the order of both programs' profiles (made once), then
# profiles recorded on that image (its block addresses differ).
for k in $KINDS; do
    for p in $PROGRAMS; do
        f=$L/$k.$p.profile
        rm -f "$f"
        root=$(do_mount sqfuse-record "$L/$k.sqfs" "$f")
        (cd /tmp && eval "$(program "$p" "$root")") >/dev/null 2>&1
        do_umount sqfuse
    done
    if [ ! -f "$L/$k-ordered.sqfs" ]; then
        orders=()
        for p in $PROGRAMS; do orders+=(--order "$L/$k.$p.profile"); done
        case $k in
            xz) popt=(-c xz -b 1M) ;;
            zstd) popt=(-c zstd -l 15 -b 128K) ;;
        esac
        "$SQFUSE" pack "$T" "$L/$k-ordered.sqfs" -q "${popt[@]}" "${orders[@]}"
    fi
    for p in $PROGRAMS; do
        f=$L/$k-ordered.$p.profile
        rm -f "$f"
        root=$(do_mount sqfuse-record "$L/$k-ordered.sqfs" "$f")
        (cd /tmp && eval "$(program "$p" "$root")") >/dev/null 2>&1
        do_umount sqfuse
    done
done

: >"$OUT"
{
    echo -e "#machine\t$(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, Linux $(uname -r)"
    sfv=$( (squashfuse_ll --version 2>&1 || true) | sed -n 's/^squashfuse \([0-9.]*\).*/\1/p' | head -1)
    echo -e "#versions\tsqfuse $(git rev-parse --short HEAD 2>/dev/null || echo ?), $(mksquashfs -version 2>&1 | head -1 | sed 's/ (.*//'), squashfuse_ll ${sfv:-?}, $("$T/py/bin/$PYVER" --version 2>/dev/null || LD_LIBRARY_PATH=$T/py/lib "$T/py/bin/$PYVER" --version), node $(node --version)"
    echo -e "#data\tpython: $(du -sm "$T/py" | cut -f1) MiB, $(find "$T/py" | wc -l) entries ($PY_PKGS); node: $(du -sm "$T/node" | cut -f1) MiB, $(find "$T/node" | wc -l) entries ($NODE_PKGS); xz.sqfs (1 MiB blocks) $(($(stat -c %s "$L/xz.sqfs") >> 20)) MiB, zstd.sqfs (128 KiB blocks) $(($(stat -c %s "$L/zstd.sqfs") >> 20)) MiB"
    echo -e "#rounds\t$ROUNDS"
} >>"$OUT"

for ROUND in $(seq "$ROUNDS"); do
    echo "launch round $ROUND/$ROUNDS" >&2
    for k in $KINDS; do
        for p in $PROGRAMS; do
            for tool in sqfuse squashfuse_ll kernel local sqfuse+preload sqfuse+ordered; do
                case $tool in
                    sqfuse+preload) launch "$p" "$k" "$tool" "$L/$k.sqfs" "$L/$k.$p.profile" ;;
                    sqfuse+ordered) launch "$p" "$k" "$tool" "$L/$k-ordered.sqfs" "$L/$k-ordered.$p.profile" ;;
                    *) launch "$p" "$k" "$tool" "$L/$k.sqfs" ;;
                esac
            done
            [ "$ROUND" = 1 ] && squashfuse_counts "$p" "$k" "$L/$k.sqfs"
        done
    done
    # Mount + stat + unmount, warm, then with the page cache dropped (the
    # programs' binaries too): the commands alone, no polling around them.
    for tool in sqfuse squashfuse_ll; do
        for state in warm cold; do
            for _ in 1 2 3 4 5; do
                [ "$state" = cold ] && drop
                t0=$(now)
                if [ "$tool" = sqfuse ]; then
                    "$SQFUSE" "$L/zstd.sqfs" "$MNT"
                else
                    squashfuse_ll "$L/zstd.sqfs" "$MNT"
                fi
                stat "$MNT/py" >/dev/null
                umount "$MNT"
                record mountstat "mount + stat + unmount, $state" "$tool" "$(since "$t0")"
                wait_gone
            done
        done
    done
done

python3 tools/bench/launch-report.py "$OUT" "${BENCH_MD:-docs/benchmarks.md}"
