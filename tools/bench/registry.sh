#!/usr/bin/env bash
# Registry benchmark: an image mounted straight from a registry (sqfuse
# docker://, blocks fetched by range as read) against pulling first:
#   - skopeo copy of the same SquashFS image, then mounting the layer file
#     (sqfuse, squashfuse_ll);
#   - the same tree as an ordinary tar-layer image: skopeo copy + umoci
#     unpack, and sqfuse pack docker:// + mount.
# For each: time to the first byte of a small file, a cold tar of the whole
# tree (pull included), and the bytes the registry served (its access log).
# The registry mount also warm: its disk cache filled by an earlier read,
# the page cache dropped. Debian's docker-registry on 127.0.0.1 (loopback,
# no added latency: the least favourable case for lazy reads).
#
#   SRC=DIR SMALL=path/in/DIR ROUNDS=2 tools/bench/registry.sh
#
# Without SRC a tree is made once in $WORK/registry/tree: /usr/share, an
# 820 MiB random file and a one-line small.txt (about 1.1 GB packed). Needs
# root (drop_caches). Prints a Markdown report.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${BENCH_DIR:-/var/tmp/sqfuse-bench}
. tools/bench/lib.sh
bench_setup registry.sh source docker-registry:docker-registry skopeo:skopeo umoci:umoci \
    bc:bc fusermount3:fuse3
R=$WORK/registry
mkdir -p "$R"
SRC=${SRC:-}
SMALL=${SMALL:-small.txt}
ROUNDS=${ROUNDS:-2}
PORT=${PORT:-18282}
MNT=$R/mnt
mkdir -p "$MNT"
if [ -z "$SRC" ]; then
    SRC=$R/tree
    if ! [ -f "$SRC/small.txt" ]; then
        rm -rf "$SRC"; mkdir -p "$SRC"
        cp -a /usr/share "$SRC/share"
        head -c $((820 << 20)) /dev/urandom >"$SRC/blob"
        echo "the small file" >"$SRC/small.txt"
    fi
fi
REG_PID=""
cleanup() {
    fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
    [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null || true
    rm -rf "$R/pull" "$R/pulloci" "$R/bundle" "$R/packed.sqfs" "$R/packed.sqfs.config.json" "$R/cache" "$R/data"
}
trap cleanup EXIT

# The SquashFS image (with a verity tree: the registry mount verifies every
# block) and the same tree as a tar layer, made once per SRC.
stamp=$(cd "$SRC" && find . -printf '%p %s %T@\n' | sort | sha256sum | cut -c1-16)
if ! [ -f "$R/sq-$stamp.sqfs" ]; then
    rm -f "$R"/sq-*.sqfs; rm -rf "$R"/layout-*
    "$SQFUSE" pack -q --verity "$SRC" "$R/sq-$stamp.sqfs" >/dev/null
    tar cf "$R/tree.tar" -C "$SRC" .
    umoci init --layout "$R/layout-$stamp"
    umoci new --image "$R/layout-$stamp:t"
    umoci raw add-layer --image "$R/layout-$stamp:t" "$R/tree.tar"
    rm -f "$R/tree.tar"
fi
IMG=$R/sq-$stamp.sqfs
LAYOUT=$R/layout-$stamp
# skopeo's dir: transport names the layer file by its digest.
LAYER_NAME=$(sha256sum "$IMG" | cut -c1-64)

rm -rf "$R/data"
cat >"$R/config.yml" <<CONF
version: 0.1
log:
  level: error
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $R/data
http:
  addr: 127.0.0.1:$PORT
CONF
docker-registry serve "$R/config.yml" >>"$R/access.log" 2>"$R/registry.err" &
REG_PID=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break
    sleep 0.1
done
HOST=127.0.0.1:$PORT
"$SQFUSE" push --insecure --verity "$IMG" "docker://$HOST/bench/sq:v1" >/dev/null 2>&1
skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:t" "docker://$HOST/bench/tar:v1"

now() { date +%s.%N; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# Bytes of GET answers the registry sent since the last reset.
served() { awk '$6 == "\"GET" {s += $10} END {print s + 0}' "$R/access.log"; }
reset_log() { : >"$R/access.log"; }
unmount() { fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT"; }
since() { echo "$(now) - $1" | bc; }
# tar's output goes through cat: GNU tar writing to /dev/null itself skips
# reading file contents.
tar_all() { tar cf - -C "$1" . | cat >/dev/null; }
mount_file() { # TOOL FILE
    if [ "$1" = squashfuse_ll ]; then squashfuse_ll "$2" "$MNT"; else "$SQFUSE" "$2" "$MNT"; fi
}
declare -A T B
add() { T[$1]+="$2 "; B[$1]=$3; }
REF=docker://$HOST/bench/sq:v1
for _ in $(seq "$ROUNDS"); do
    # The registry mount, nothing cached.
    drop; reset_log; t0=$(now)
    "$SQFUSE" "$REF" "$MNT" -o insecure,cache_dir=none
    head -c1 "$MNT/$SMALL" >/dev/null
    add reg_first "$(since "$t0")" "$(served)"; unmount
    drop; reset_log; t0=$(now)
    "$SQFUSE" "$REF" "$MNT" -o insecure,cache_dir=none
    tar_all "$MNT"
    add reg_tar "$(since "$t0")" "$(served)"; unmount
    # Warm: the disk cache filled by a full read, the page cache dropped.
    rm -rf "$R/cache"
    "$SQFUSE" "$REF" "$MNT" -o "insecure,cache_dir=$R/cache"; tar_all "$MNT"; unmount
    drop; reset_log; t0=$(now)
    "$SQFUSE" "$REF" "$MNT" -o "insecure,cache_dir=$R/cache"
    head -c1 "$MNT/$SMALL" >/dev/null
    add warm_first "$(since "$t0")" "$(served)"
    tar_all "$MNT"
    add warm_tar "$(since "$t0")" "$(served)"; unmount
    # skopeo copy of the SquashFS image, then mount its layer file.
    for tool in sqfuse squashfuse_ll; do
        for what in first tar; do
            rm -rf "$R/pull"; drop; reset_log; t0=$(now)
            skopeo copy -q --src-tls-verify=false "$REF" "dir:$R/pull"
            mount_file "$tool" "$R/pull/$LAYER_NAME"
            if [ $what = first ]; then head -c1 "$MNT/$SMALL" >/dev/null; else tar_all "$MNT"; fi
            add "pull_${tool}_$what" "$(since "$t0")" "$(served)"; unmount
        done
    done
    # The tar-layer image: skopeo copy + umoci unpack, then read the rootfs.
    for what in first tar; do
        rm -rf "$R/pulloci" "$R/bundle"; drop; reset_log; t0=$(now)
        skopeo copy -q --src-tls-verify=false "docker://$HOST/bench/tar:v1" "oci:$R/pulloci:t"
        umoci unpack --image "$R/pulloci:t" "$R/bundle" >/dev/null
        if [ $what = first ]; then head -c1 "$R/bundle/rootfs/$SMALL" >/dev/null; else tar_all "$R/bundle/rootfs"; fi
        add "unpack_$what" "$(since "$t0")" "$(served)"
    done
    rm -rf "$R/pulloci" "$R/bundle"
    # sqfuse pack docker:// of the tar-layer image, then mount it.
    for what in first tar; do
        rm -f "$R/packed.sqfs" "$R/packed.sqfs.config.json"; drop; reset_log; t0=$(now)
        "$SQFUSE" pack -q --insecure "docker://$HOST/bench/tar:v1" "$R/packed.sqfs"
        "$SQFUSE" "$R/packed.sqfs" "$MNT"
        if [ $what = first ]; then head -c1 "$MNT/$SMALL" >/dev/null; else tar_all "$MNT"; fi
        add "pack_$what" "$(since "$t0")" "$(served)"; unmount
    done
    rm -f "$R/packed.sqfs" "$R/packed.sqfs.config.json"
done

best() { tr ' ' '\n' <<<"${T[$1]}" | grep . | sort -g | head -1; }
ratio() { echo "scale=3; $1 / $2" | bc; }
SIZE=$(stat -c %s "$IMG")
echo "# Registry images: mounted from the registry vs pulled first"
echo
echo "Image: $SIZE bytes (SquashFS, zstd, 128 KiB blocks, a verity tree), from $SRC;"
echo "the same tree as a tar layer for the umoci and pack rows. Registry: Debian's"
echo "docker-registry on loopback (no added latency). Best of $ROUNDS rounds; the"
echo "page cache dropped before each; times include the pull, unpack or pack."
echo
echo "| how | first byte of $SMALL (s) | bytes for it | cold tar of the tree (s) | bytes for it |"
echo "|---|---|---|---|---|"
row() { echo "| $1 | $(best "$2_first") | ${B[$2_first]} | $(best "$2_tar") | ${B[$2_tar]} |"; }
row "sqfuse docker:// (no cache)" reg
row "sqfuse docker://, disk cache warm" warm
row "skopeo copy + sqfuse mount" pull_sqfuse
row "skopeo copy + squashfuse_ll mount" pull_squashfuse_ll
row "skopeo copy + umoci unpack (tar image)" unpack
row "sqfuse pack docker:// + mount (tar image)" pack
pull=$(printf '%s\n' "$(best pull_sqfuse_first)" "$(best pull_squashfuse_ll_first)" | sort -g | head -1)
pullt=$(printf '%s\n' "$(best pull_sqfuse_tar)" "$(best pull_squashfuse_ll_tar)" | sort -g | head -1)
echo
echo "First byte, registry mount / best pull-then-mount: $(ratio "$(best reg_first)" "$pull")"
echo "(bytes: $(ratio "${B[reg_first]}" "$SIZE") of the image). Cold tar, registry mount /"
echo "best pull-then-mount: $(ratio "$(best reg_tar)" "$pullt"); / umoci unpack: $(ratio "$(best reg_tar)" "$(best unpack_tar)");"
echo "/ pack + mount: $(ratio "$(best reg_tar)" "$(best pack_tar)")."
