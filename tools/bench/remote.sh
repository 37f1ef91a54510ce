#!/usr/bin/env bash
# Remote-image benchmark: sqfuse mounting a URL vs downloading the image
# with curl and then mounting it (squashfuse_ll, sqfuse). Reports time to
# the first byte of a small file, bytes transferred, and a cold `tar` of
# the whole tree. Needs root (drop_caches), nginx, curl, squashfuse_ll.
#
#   IMG=/path/big.sqfs SMALL=small.txt ROUNDS=2 tools/bench/remote.sh
#
# Latency: with sch_netem available the server runs in a network namespace
# behind a veth pair with `tc netem delay ${DELAY_MS}ms rate 1gbit` (both
# ways); without it (containers without the module) it runs on plain
# loopback and says so in the report.
set -euo pipefail
cd "$(dirname "$0")/../.."
IMG=${IMG:?IMG=path to the image}
SMALL=${SMALL:-small.txt}
ROUNDS=${ROUNDS:-2}
DELAY_MS=${DELAY_MS:-20}
SQFUSE=${SQFUSE:-$PWD/target/release/sqfuse}
SQUASHFUSE_LL=${SQUASHFUSE_LL:-squashfuse_ll}
WORK=$(mktemp -d /var/tmp/sqfuse-rbench.XXXXXX)
MNT=$WORK/mnt; mkdir -p "$MNT" "$WORK/logs"
PORT=18181
NS=""
cleanup() {
    fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    if [ -n "$NS" ]; then ip netns del "$NS" 2>/dev/null || true; ip link del sqb0 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
HOST=127.0.0.1
LINK="loopback, no added latency (sch_netem unavailable)"
if ip netns add sqbench-$$ 2>/dev/null; then
    NS=sqbench-$$
    ip link add sqb0 type veth peer name sqb1
    ip link set sqb1 netns "$NS"
    ip addr add 10.77.0.1/24 dev sqb0; ip link set sqb0 up
    ip -n "$NS" addr add 10.77.0.2/24 dev sqb1; ip -n "$NS" link set sqb1 up; ip -n "$NS" link set lo up
    if tc qdisc add dev sqb0 root netem delay "${DELAY_MS}ms" rate 1gbit 2>/dev/null &&
       ip netns exec "$NS" tc qdisc add dev sqb1 root netem delay "${DELAY_MS}ms" rate 1gbit 2>/dev/null; then
        HOST=10.77.0.2
        LINK="veth pair, netem ${DELAY_MS} ms each way, 1 Gbit/s"
    else
        ip netns del "$NS"; ip link del sqb0 2>/dev/null || true; NS=""
    fi
fi
cat > "$WORK/nginx.conf" <<CONF
daemon on; worker_processes 2; pid $WORK/nginx.pid; error_log $WORK/logs/error.log;
events { worker_connections 256; }
http { access_log $WORK/logs/access.log; log_format b '\$body_bytes_sent';
  server { listen $HOST:$PORT; root $(dirname "$IMG"); access_log $WORK/logs/bytes.log b; } }
CONF
if [ -n "$NS" ]; then ip netns exec "$NS" nginx -c "$WORK/nginx.conf" -p "$WORK"; else nginx -c "$WORK/nginx.conf" -p "$WORK"; fi
URL=http://$HOST:$PORT/$(basename "$IMG")
SIZE=$(stat -c %s "$IMG")
now() { date +%s.%N; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
served() { awk '{s+=$1} END {print s+0}' "$WORK/logs/bytes.log"; }
reset_log() { : > "$WORK/logs/bytes.log"; }
unmount() { fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT"; }
best() { sort -g | head -1; }

# tar's output goes through cat: GNU tar writing to /dev/null itself
# skips reading file contents.
declare -A T
for r in $(seq "$ROUNDS"); do
    # sqfuse on the URL: first byte, then a cold tar on a fresh mount.
    drop; reset_log; t0=$(now)
    "$SQFUSE" "$URL" "$MNT" -o cache_dir=none
    head -c1 "$MNT/$SMALL" >/dev/null; t1=$(now)
    T[url_first]+="$(echo "$t1 - $t0" | bc) "; B_url_first=$(served)
    unmount; drop; reset_log; t0=$(now)
    "$SQFUSE" "$URL" "$MNT" -o cache_dir=none
    tar cf - -C "$MNT" . | cat >/dev/null; t1=$(now)
    T[url_tar]+="$(echo "$t1 - $t0" | bc) "; B_url_tar=$(served); unmount
    # curl, then mount the download (squashfuse_ll and sqfuse).
    for m in squashfuse_ll sqfuse; do
        rm -f "$WORK/dl.sqfs"; drop; reset_log; t0=$(now)
        curl -sf -o "$WORK/dl.sqfs" "$URL"
        if [ $m = squashfuse_ll ]; then "$SQUASHFUSE_LL" "$WORK/dl.sqfs" "$MNT"; else "$SQFUSE" "$WORK/dl.sqfs" "$MNT"; fi
        head -c1 "$MNT/$SMALL" >/dev/null; t1=$(now)
        T[dl_first_$m]+="$(echo "$t1 - $t0" | bc) "; B_dl=$(served)
        unmount; sync; echo 3 > /proc/sys/vm/drop_caches; t2=$(now)
        if [ $m = squashfuse_ll ]; then "$SQUASHFUSE_LL" "$WORK/dl.sqfs" "$MNT"; else "$SQFUSE" "$WORK/dl.sqfs" "$MNT"; fi
        tar cf - -C "$MNT" . | cat >/dev/null; t3=$(now); unmount
        # download time plus the cold tar of the downloaded file
        dl=$(echo "$t1 - $t0" | bc)
        T[dl_tar_$m]+="$(echo "$dl + $t3 - $t2" | bc) "
    done
done
b() { tr ' ' '\n' <<<"${T[$1]}" | grep . | best; }
ratio() { echo "scale=3; $1 / $2" | bc; }
echo "# Remote images: sqfuse on the URL vs download-then-mount"
echo
echo "Image: $(basename "$IMG"), $SIZE bytes. Link: $LINK. Best of $ROUNDS rounds; page cache dropped before each."
echo
echo "| workload | sqfuse URL | curl + squashfuse_ll | curl + sqfuse | URL / best download |"
echo "|---|---|---|---|---|"
uf=$(b url_first); d1=$(b dl_first_squashfuse_ll); d2=$(b dl_first_sqfuse)
bestd=$(printf '%s\n' "$d1" "$d2" | best)
echo "| first byte of $SMALL (s) | $uf | $d1 | $d2 | $(ratio "$uf" "$bestd") |"
echo "| bytes transferred for it | $B_url_first | $B_dl | $B_dl | $(ratio "$B_url_first" "$B_dl") |"
ut=$(b url_tar); t1=$(b dl_tar_squashfuse_ll); t2=$(b dl_tar_sqfuse)
bestt=$(printf '%s\n' "$t1" "$t2" | best)
echo "| cold tar of the tree, incl. download (s) | $ut | $t1 | $t2 | $(ratio "$ut" "$bestt") |"
echo "| bytes transferred for the tar | $B_url_tar | $B_dl | $B_dl | $(ratio "$B_url_tar" "$B_dl") |"
