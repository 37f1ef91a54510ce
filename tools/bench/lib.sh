# Shared by the benchmark scripts (sourced): root check, missing Debian
# packages, the peers built from source, sqfuse built for release.
#
#   bench_setup NAME PEERS_DEFAULT CMD:PACKAGE...
#
# Needs WORK set; sets SQFUSE; puts $WORK/peers/bin first in PATH when
# PEERS (default PEERS_DEFAULT) is "source".
bench_setup() {
    local name=$1 peers_default=$2 c
    shift 2
    if [ "$(id -u)" != 0 ]; then
        echo "$name: run as root (drop_caches, loop mounts)" >&2
        exit 2
    fi
    local need=()
    for c in "$@"; do
        command -v "${c%%:*}" >/dev/null || need+=("${c##*:}")
    done
    if [ ${#need[@]} -gt 0 ]; then
        echo "installing ${need[*]}" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    if [ "${PEERS:-$peers_default}" = source ]; then
        if ! [ -x "$WORK/peers/bin/mksquashfs" ] || ! [ -x "$WORK/peers/bin/squashfuse_ll" ]; then
            echo "building squashfs-tools 4.7.x and squashfuse 0.6.x from source" >&2
            tools/bench/peers.sh "$WORK/peers" >&2
        fi
        export PATH="$WORK/peers/bin:$PATH"
    fi
    cargo build --release --quiet
    SQFUSE=$PWD/target/release/sqfuse
}
