#!/usr/bin/env python3
"""Build a source tree that exercises every SquashFS feature.

Usage: mkfixture.py DIR [--small]

Deterministic: the same tree (contents, modes, owners, times, xattrs) every
run. Parts that need root (devices, foreign owners, trusted.* xattrs) are
made only when running as root; a line on stderr says what was left out.
--small leaves out the big directory and the large files (for fast tests).
"""
import os
import random
import socket
import stat
import sys

ROOT = os.geteuid() == 0


def write(path, data, mode=0o644, mtime=1_600_000_000):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    os.utime(path, (mtime, mtime))


def xattr(path, name, value):
    try:
        os.setxattr(path, name, value, follow_symlinks=False)
    except OSError as e:
        print(f"mkfixture: no xattr {name} on {path}: {e}", file=sys.stderr)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: mkfixture.py DIR [--small]")
    top = sys.argv[1]
    small = "--small" in sys.argv
    rng = random.Random(20261122)
    os.makedirs(top, exist_ok=False)
    d = lambda *p: os.path.join(top, *p)

    # Sizes around every block size the tests use (4K, 128K, 1M).
    os.mkdir(d("sizes"))
    sizes = [0, 1, 4095, 4096, 4097, 8191, 8192, 8193, 131071, 131072, 131073]
    if not small:
        sizes += [1048575, 1048576, 1048577, 3 * 1048576 + 17]
    for n in sizes:
        write(d("sizes", f"size-{n}"), bytes(rng.getrandbits(8) for _ in range(min(n, 4096))) * (n // 4096) + bytes(rng.getrandbits(8) for _ in range(n % 4096)))

    # Compressible text, random data, all zeros, a sparse file.
    os.mkdir(d("data"))
    text = b"".join(b"line %d of some highly compressible text\n" % i for i in range(20000))
    write(d("data", "text"), text)
    rand = rng.randbytes(300_000)
    write(d("data", "random"), rand)
    write(d("data", "zeros"), bytes(200_000))
    with open(d("data", "sparse"), "wb") as f:
        f.truncate(5 * 1048576 + 333)
        f.seek(2 * 1048576)
        f.write(b"island of data in a sea of holes")
    os.utime(d("data", "sparse"), (1_600_000_000, 1_600_000_000))
    # Whole-file duplicate, and two files sharing only a tail.
    write(d("data", "random-copy"), rand)
    tail = rng.randbytes(1000)
    write(d("data", "tail-a"), rng.randbytes(131072) + tail)
    write(d("data", "tail-b"), rng.randbytes(131072) + tail)

    # Hard links across directories.
    os.makedirs(d("links", "one"))
    os.makedirs(d("links", "two"))
    write(d("links", "one", "target"), b"hard-linked content\n", 0o640)
    os.link(d("links", "one", "target"), d("links", "two", "alias"))
    os.link(d("links", "one", "target"), d("links", "third-name"))

    # Symlinks: relative, absolute, dangling, long.
    os.mkdir(d("symlinks"))
    os.symlink("../data/text", d("symlinks", "relative"))
    os.symlink("/etc/hostname", d("symlinks", "absolute"))
    os.symlink("does/not/exist", d("symlinks", "dangling"))
    os.symlink("x" * 4000, d("symlinks", "long"))
    for n in os.listdir(d("symlinks")):
        os.utime(d("symlinks", n), (1_500_000_000, 1_500_000_000), follow_symlinks=False)

    os.mkdir(d("empty-dir"))

    # 40-deep nesting.
    p = d("deep")
    for i in range(40):
        p = os.path.join(p, f"level{i}")
    os.makedirs(p)
    write(os.path.join(p, "bottom"), b"bottom of the tree\n")

    # A directory big enough to need a directory index.
    os.mkdir(d("big-dir"))
    count = 300 if small else 3100
    for i in range(count):
        write(d("big-dir", f"entry-{i:05d}-with-a-longish-name"), b"%d\n" % i)

    # Awkward names.
    os.mkdir(d("names"))
    for name in ["with space", "new\nline", "ütf-8 ✓ 名前", "n" * 255, "-dash", "#hash", "tab\there"]:
        write(d("names", name), name.encode())

    # Special files.
    os.mkdir(d("special"))
    os.mkfifo(d("special", "fifo"), 0o640)
    s = socket.socket(socket.AF_UNIX)
    s.bind(d("special", "socket"))
    s.close()
    if ROOT:
        os.mknod(d("special", "char"), 0o620 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(d("special", "block"), 0o660 | stat.S_IFBLK, os.makedev(8, 1))
        os.mknod(d("special", "char-big"), 0o600 | stat.S_IFCHR, os.makedev(4095, 1048575))
        os.mknod(d("special", "block-big"), 0o600 | stat.S_IFBLK, os.makedev(300, 70000))
    else:
        print("mkfixture: not root: no device nodes, owners or trusted.* xattrs", file=sys.stderr)
    for n in os.listdir(d("special")):
        os.utime(d("special", n), (1_400_000_000, 1_400_000_000), follow_symlinks=False)

    # Modes and owners.
    os.mkdir(d("modes"))
    for name, mode in [("setuid", 0o4755), ("setgid", 0o2755), ("sticky-file", 0o1644), ("mode-000", 0o000), ("all", 0o7777)]:
        write(d("modes", name), name.encode(), mode)
    os.mkdir(d("modes", "sticky-dir"))
    os.chmod(d("modes", "sticky-dir"), 0o1777)
    os.mkdir(d("modes", "dir-000"))
    if ROOT:
        for name, uid, gid in [("owner-big", 4_000_000_000, 3_999_999_999), ("owner-1000", 1000, 1000), ("owner-65534", 65534, 0)]:
            write(d("modes", name), name.encode())
            os.lchown(d("modes", name), uid, gid)
        os.lchown(d("symlinks", "relative"), 123, 456)

    # Extended attributes.
    os.mkdir(d("xattrs"))
    write(d("xattrs", "file"), b"has xattrs\n")
    xattr(d("xattrs", "file"), "user.plain", b"value")
    xattr(d("xattrs", "file"), "user.empty", b"")
    xattr(d("xattrs", "file"), "user.big", bytes(rng.getrandbits(8) for _ in range(3000)))
    xattr(d("xattrs", "file"), "security.label", b"secret")
    write(d("xattrs", "shared-1"), b"one")
    write(d("xattrs", "shared-2"), b"two")
    for n in ["shared-1", "shared-2"]:
        xattr(d("xattrs", n), "user.same", b"a value stored once and shared" * 4)
    xattr(d("xattrs"), "user.on-dir", b"dir value")
    os.symlink("file", d("xattrs", "link"))
    if ROOT:
        xattr(d("xattrs", "file"), "trusted.t", b"trusted value")
        xattr(d("xattrs", "link"), "trusted.on-link", b"")
        # A file capability (cap_net_raw, VFS_CAP_REVISION_2): chown drops
        # these, so extractors must set owners before xattrs.
        write(d("xattrs", "capability"), b"cap\n", 0o755)
        xattr(d("xattrs", "capability"), "security.capability", bytes([0, 0, 0, 2, 0, 0x20, 0, 0]) + bytes(12))

    # Extreme times (set last on everything that needs it).
    write(d("time-zero"), b"epoch\n", mtime=0)
    write(d("time-max"), b"2106\n", mtime=2**32 - 1)
    os.utime(d("special", "fifo"), (1234567890, 1234567890))

    # Directory times last, deepest first, so creating children does not change them.
    for dirpath, dirnames, _ in sorted(os.walk(top), key=lambda w: -w[0].count(os.sep)):
        os.utime(dirpath, (1_650_000_000, 1_650_000_000))
    os.chmod(d("modes", "dir-000"), 0o000)


if __name__ == "__main__":
    main()
