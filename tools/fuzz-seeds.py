#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into fuzz/corpus/<target>/.

Small images of every compressor (mksquashfs, and `sqfuse pack` when a
binary is given), the regions of those images each structure target reads,
and tar archives of every flavour. Run from the repository root:

    tools/fuzz-seeds.py [path/to/sqfuse]
"""
import os, shutil, struct, subprocess, sys, tarfile, tempfile, io

OUT = "fuzz/corpus"
# Compressor ids as the superblock stores them; the fuzz targets read
# (id - 1) from their first byte.
COMPRESSORS = {"gzip": 1, "lzma": 2, "lzo": 3, "xz": 4, "lz4": 5, "zstd": 6}


def tree(root):
    os.makedirs(f"{root}/dir/sub")
    with open(f"{root}/small", "w") as f:
        f.write("hello\n")
    with open(f"{root}/blocks", "wb") as f:
        f.write(bytes(range(256)) * 20)  # a block and a tail at -b 4096
    with open(f"{root}/sparse", "wb") as f:
        f.truncate(8192)
        f.seek(8192)
        f.write(b"end")
    os.link(f"{root}/small", f"{root}/dir/hardlink")
    os.symlink("../small", f"{root}/dir/link")
    os.mkfifo(f"{root}/dir/fifo")
    for i in range(3):
        with open(f"{root}/dir/sub/f{i}", "w") as f:
            f.write("x" * i)
    try:
        os.setxattr(f"{root}/small", "user.mime", b"text/plain")
        os.setxattr(f"{root}/dir", "user.empty", b"")
    except OSError:
        pass  # no user xattrs on this filesystem


def put(target, name, data):
    os.makedirs(f"{OUT}/{target}", exist_ok=True)
    with open(f"{OUT}/{target}/{name}", "wb") as f:
        f.write(data)


def cut(name, img):
    """Seeds for the structure targets from one image's tables."""
    (magic, inodes, _, bs, frags, comp, _, flags, ids, _, _, root, used,
     id_start, x_start, i_start, d_start, f_start, e_start) = struct.unpack(
        "<IIIIIHHHHHHQQQQQQQQ", img[:96])
    c = comp - 1
    put("superblock", name, img[:96] + struct.pack("<Q", used))
    put("metadata", name, bytes([c, 0]) + img[i_start:d_start])
    put("inode", name, bytes([c, (bs.bit_length() - 13) % 9]) + img[i_start:d_start])
    put("dir", name, bytes([c, 255]) + img[d_start:used])
    if x_start != 2**64 - 1:
        put("xattr", name, bytes([c, 8]) + img[:x_start + 24])
    # The id table: its one block index entry ends the input.
    put("table", name + "-ids", bytes([c, ids]) + img[:id_start + 8])
    if f_start != 2**64 - 1:
        put("table", name + "-frags", bytes([c + 12, frags]) + img[:f_start + 8])
    if e_start != 2**64 - 1 and inodes < 256:
        put("table", name + "-export", bytes([c + 6, inodes]) + img[:e_start + 8])


def tars(tmp):
    def member(name, data=b"", **kw):
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        ti.mtime = 1700000000
        for k, v in kw.items():
            setattr(ti, k, v)
        return ti, io.BytesIO(data) if data else None

    for fmt, label in [(tarfile.GNU_FORMAT, "gnu"), (tarfile.PAX_FORMAT, "pax"),
                       (tarfile.USTAR_FORMAT, "ustar")]:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
            t.addfile(*member("dir/", type=tarfile.DIRTYPE, mode=0o755))
            t.addfile(*member("dir/file", b"contents\n", mode=0o644, uid=1000, gid=100))
            t.addfile(*member("dir/hard", type=tarfile.LNKTYPE, linkname="dir/file"))
            t.addfile(*member("dir/sym", type=tarfile.SYMTYPE, linkname="file"))
            t.addfile(*member("dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3))
            t.addfile(*member("fifo", type=tarfile.FIFOTYPE))
            if fmt != tarfile.USTAR_FORMAT:
                t.addfile(*member("long/" + "n" * 150 + "/name", b"x"))
            if fmt == tarfile.PAX_FORMAT:
                ti, data = member("xattrs", b"y")
                ti.pax_headers = {"SCHILY.xattr.user.a": "1", "LIBARCHIVE.xattr.user.b": "Mg"}
                t.addfile(ti, data)
        put("tar", f"{label}.tar", buf.getvalue())
    # GNU sparse members, if GNU tar is here.
    if shutil.which("tar"):
        src = f"{tmp}/sparse-src"
        os.makedirs(src)
        with open(f"{src}/holes", "wb") as f:
            f.truncate(40960)
            f.seek(20000)
            f.write(b"data")
        for label, fmt in [("gnu-sparse", "gnu"), ("pax-sparse", "posix")]:
            out = f"{tmp}/{label}.tar"
            subprocess.run(["tar", "-C", src, "--sparse", f"--format={fmt}", "-cf", out, "holes"],
                           check=True)
            with open(out, "rb") as f:
                put("tar", f"{label}.tar", f.read())


def main():
    sqfuse = sys.argv[1] if len(sys.argv) > 1 else None
    with tempfile.TemporaryDirectory() as tmp:
        src = f"{tmp}/tree"
        tree(src)
        images = []
        for comp in COMPRESSORS:
            img = f"{tmp}/{comp}.sqfs"
            r = subprocess.run(["mksquashfs", src, img, "-comp", comp, "-b", "4096",
                                "-noappend", "-quiet", "-no-progress"], capture_output=True)
            if r.returncode == 0:
                images.append((f"mksquashfs-{comp}", img))
            else:
                print(f"mksquashfs cannot write {comp}; skipped", file=sys.stderr)
        if sqfuse:
            for comp in ["gzip", "zstd", "xz", "lz4", "lzo"]:
                img = f"{tmp}/sqfuse-{comp}.sqfs"
                subprocess.run([sqfuse, "pack", src, img, "-c", comp, "-b", "4K", "-q"],
                               check=True)
                images.append((f"sqfuse-{comp}", img))
        for name, img in images:
            with open(img, "rb") as f:
                data = f.read()
            put("image", name + ".sqfs", data)
            cut(name, data)
        tars(tmp)


if __name__ == "__main__":
    main()
