#!/usr/bin/env python3
"""Turns tools/bench/launch.sh's results into the launch section of
docs/benchmarks.md (between its launch markers; added at the end if
missing; report.py keeps the section when it rewrites the file).

    launch-report.py RESULTS.tsv BENCHMARKS.md

RESULTS.tsv lines: section, workload, tool, value (tab-separated), '#'
lines describe the run. Times and CPU seconds: best of the rounds;
request counts: as recorded (one run each).
"""
import re
import sys
from collections import OrderedDict

BEGIN = "<!-- launch:begin -->"
END = "<!-- launch:end -->"
TOOLS = ["sqfuse", "squashfuse_ll", "kernel", "local", "sqfuse+preload", "sqfuse+ordered"]
OPS = ["lookup", "getattr", "open", "read", "release", "opendir", "readdir",
       "readdirplus", "releasedir", "readlink", "getxattr", "access", "statfs", "flush"]

# Counter lines that are not requests the program caused.
NOT_REQUESTS = {"blocks_decompressed", "bytes_decompressed", "preload_steps", "preload_bytes",
                "preload_image_bytes", "fill_ahead_files", "fill_ahead_bytes", "init", "destroy"}


def load(path):
    meta, best, counts = OrderedDict(), OrderedDict(), OrderedDict()
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line:
            continue
        if line.startswith("#"):
            k, _, v = line[1:].partition("\t")
            meta[k] = v
            continue
        section, workload, tool, value = line.split("\t")
        v = float(value)
        if section == "launchreq":
            counts.setdefault(workload, OrderedDict())[tool] = v
            continue
        per = best.setdefault((section, workload), OrderedDict())
        per[tool] = min(per.get(tool, v), v)
    return meta, best, counts


def t(v):
    return "-" if v is None else (f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s")


def ratio(a, b):
    """a over b, as 'N.NNx', or '-'."""
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def verdict(ok):
    return "-" if ok is None else ("met" if ok else "**not met**")


def table(meta, best, counts):
    out = [BEGIN, "## Launch: programs started from an image", ""]
    out += [
        "Written by `tools/bench/launch.sh` (see the README's Benchmarks",
        "section). A Python prefix with many packages from PyPI imports them",
        "all; a Node.js application requires its node_modules packages. Both",
        "trees are in one image, made by mksquashfs (xz with 1 MiB blocks, zstd",
        "with 128 KiB blocks). Cold: the page cache dropped before the mount,",
        "timed from the mount's return; warm: the same command again. `sqfuse+preload` mounts the same image",
        "with `-o preload=` (a profile recorded on it); `sqfuse+ordered` mounts",
        "an image sqfuse packed with `--order` (same compressor, level, block",
        "size) with its own profile preloaded. `local` is the tree in a local",
        "directory (ext4), the floor. Best of the rounds. What the numbers",
        "say, and what was tried: [launch.md](launch.md).",
        "",
    ]
    for k in ("machine", "versions", "data", "rounds"):
        if k in meta:
            out.append(f"- {k.capitalize()}: {meta[k]}")
    out += ["", "| workload | " + " | ".join(TOOLS)
            + " | squashfuse_ll / sqfuse | kernel / sqfuse | squashfuse_ll / sqfuse+ordered | sqfuse+ordered / local |",
            "|---" * (len(TOOLS) + 5) + "|"]
    targets = []
    for (section, w), per in best.items():
        if section != "launch":
            continue
        g = per.get
        out.append(f"| {w} | " + " | ".join(t(g(x)) for x in TOOLS) + " | "
                   + " | ".join([ratio(g("squashfuse_ll"), g("sqfuse")), ratio(g("kernel"), g("sqfuse")),
                                 ratio(g("squashfuse_ll"), g("sqfuse+ordered")),
                                 ratio(g("sqfuse+ordered"), g("local"))]) + " |")
        s, q, k, l, o = g("sqfuse"), g("squashfuse_ll"), g("kernel"), g("local"), g("sqfuse+ordered")
        if w.endswith("cold"):
            targets.append((f"{w}: sqfuse ≥ 1.25x squashfuse_ll", s and q and q / s >= 1.25))
            targets.append((f"{w}: sqfuse ≥ 1.1x kernel", s and k and k / s >= 1.1))
            targets.append((f"{w}: with a profile ≥ 2x squashfuse_ll", o and q and q / o >= 2))
            if ", zstd," in w:
                targets.append((f"{w}: with a profile within 1.3x of the local directory", o and l and o / l <= 1.3))
        else:
            targets.append((f"{w}: sqfuse no slower than the kernel", s and k and s <= k))
    out += ["", "Server CPU (user+sys seconds of the FUSE process during the run):", "",
            "| workload | " + " | ".join(x for x in TOOLS if x not in ("kernel", "local")) + " |",
            "|---" * (len(TOOLS) - 1) + "|"]
    for (section, w), per in best.items():
        if section == "launchcpu":
            out.append(f"| {w} | " + " | ".join(
                "-" if per.get(x) is None else f"{per[x]:.2f} s"
                for x in TOOLS if x not in ("kernel", "local")) + " |")
    if counts:
        out += ["", "FUSE requests by type, one cold run (sqfuse: its counters in",
                "`user.sqfuse.stats`; squashfuse_ll 0.6: its `-d` log, in a run of",
                "its own), and the bytes sqfuse decompressed:", ""]
        rows = []
        used = set()
        for w, per in counts.items():
            for tool in ("sqfuse", "squashfuse_ll"):
                row = {k.split(" ", 1)[1]: v for k, v in per.items() if k.startswith(tool + " ")}
                if row:
                    rows.append((w, tool, row))
                    used |= {op for op, v in row.items() if v and op in OPS}
        ops = [op for op in OPS if op in used]
        out += ["| workload | server | " + " | ".join(ops) + " | all | decompressed |",
                "|---" * (len(ops) + 4) + "|"]
        for w, tool, row in rows:
            total = sum(v for op, v in row.items() if op not in NOT_REQUESTS)
            dec = row.get("bytes_decompressed")
            out.append(f"| {w} | {tool} | " + " | ".join(f"{row.get(op, 0):.0f}" for op in ops)
                       + f" | {total:.0f} | " + ("-" if dec is None else f"{dec / 2**20:.0f} MiB") + " |")
    ms = [(w, per) for (section, w), per in best.items() if section == "mountstat"]
    if ms:
        out += ["", "| mount + stat + unmount (zstd image), best of 5 per round | sqfuse | squashfuse_ll | squashfuse_ll / sqfuse |",
                "|---|---|---|---|"]
        for w, per in ms:
            s, q = per.get("sqfuse"), per.get("squashfuse_ll")
            out.append(f"| {w} | {t(s)} | {t(q)} | {ratio(q, s)} |")
            targets.append((f"{w}: no slower than squashfuse_ll", s and q and s <= q))
    out += ["", "Targets (issue 22):", ""]
    out += [f"- {name}: {verdict(None if ok is None else bool(ok))}" for name, ok in targets]
    out.append(END)
    return "\n".join(out)


def splice(doc, block):
    """`doc` with its launch section replaced by `block` (appended if none)."""
    pat = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if pat.search(doc):
        return pat.sub(lambda _: block, doc)
    return doc.rstrip("\n") + "\n\n" + block + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: launch-report.py RESULTS.tsv BENCHMARKS.md")
    meta, best, counts = load(sys.argv[1])
    block = table(meta, best, counts)
    try:
        doc = open(sys.argv[2], encoding="utf-8").read()
    except FileNotFoundError:
        doc = "# Benchmarks\n"
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(splice(doc, block))
    print(block)


if __name__ == "__main__":
    main()
