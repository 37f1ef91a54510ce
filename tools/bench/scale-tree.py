#!/usr/bin/env python3
"""The benchmark's scale tree: 300k small files in 2k directories (20 x 100
nested two deep) plus one directory of 100k empty files. Contents are
deterministic (a seeded generator), partly compressible, 64 B to 8 KiB,
one file in twenty a duplicate of an earlier one.

    tools/bench/scale-tree.py DIR
"""
import os
import random
import sys

out = sys.argv[1]
rng = random.Random(11)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
         for _ in range(2000)]
kept = []
n = 0
for a in range(20):
    for b in range(100):
        d = os.path.join(out, f"d{a:02}", f"e{b:03}")
        os.makedirs(d, exist_ok=True)
        for f in range(150):
            if kept and n % 20 == 19:
                data = kept[rng.randrange(len(kept))]
            else:
                size = rng.randint(64, 8192)
                text = b" ".join(rng.choice(words) for _ in range(size // 5))[:size]
                data = text + rng.randbytes(max(0, size - len(text)))
                if len(kept) < 1000:
                    kept.append(data)
            with open(os.path.join(d, f"file-{f:03}.txt"), "wb") as fh:
                fh.write(data)
            n += 1
empty = os.path.join(out, "many")
os.makedirs(empty, exist_ok=True)
for f in range(100000):
    open(os.path.join(empty, f"empty-{f:06}"), "wb").close()
