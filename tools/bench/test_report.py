#!/usr/bin/env python3
"""Checks report.py on a small made-up result set: best-of selection,
ratios, targets, table escaping and the chart. Run by .ci/run."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))

RESULTS = """#machine\t2 cores (test), 1 GiB RAM, Linux test
#rounds\t2
mount\tcold tar -cf - . | wc -c (/usr/share)\tsqfuse\t6.0
mount\tcold tar -cf - . | wc -c (/usr/share)\tsqfuse\t5.0
mount\tcold tar -cf - . | wc -c (/usr/share)\tsquashfuse_ll\t20.0
mount\tcold tar -cf - . | wc -c (/usr/share)\tkernel\t4.0
mount\tcold find -ls (/usr/share)\tsqfuse\t1.4
mount\tcold find -ls (/usr/share)\tsquashfuse_ll\t6.0
mount\tcold find -ls (/usr/share)\tkernel\t1.0
iops\tfio 4 KiB random reads, 4 jobs, 8 s (IOPS)\tsqfuse\t100000
iops\tfio 4 KiB random reads, 4 jobs, 8 s (IOPS)\tsqfuse\t150000
iops\tfio 4 KiB random reads, 4 jobs, 8 s (IOPS)\tsquashfuse_ll\t3000
iops\tfio 4 KiB random reads, 4 jobs, 8 s (IOPS)\tkernel\t200000
requests\tcold tar -cf - . | wc -c (/usr/share)\tread\t6400
requests\tcold tar -cf - . | wc -c (/usr/share)\tread\t6300
requests\tcold tar -cf - . | wc -c (/usr/share)\tfill_ahead_files\t41000
requests\tcold tar -cf - . | wc -c (/usr/share)\tbytes_decompressed\t536870912
mountcpu\tcold tar -cf - . | wc -c (/usr/share)\tsqfuse\t3.0
mountcpu\tcold tar -cf - . | wc -c (/usr/share)\tsquashfuse_ll\t2.5
mountbusy\tcold tar -cf - . | wc -c (/usr/share)\tsqfuse\t4.0
mountbusy\tcold tar -cf - . | wc -c (/usr/share)\tsquashfuse_ll\t4.0
mountbusy\tcold tar -cf - . | wc -c (/usr/share)\tkernel\t2.0
pack\tscale tree\tsqfuse\t10
pack\tscale tree\tmksquashfs\t20
packsize\tscale tree\tsqfuse\t1000
packsize\tscale tree\tmksquashfs\t1000
packrss\tscale tree\tsqfuse\t200
packrss\tscale tree\tmksquashfs\t1000
pack\tzstd 3\tsqfuse\t2.0
pack\tzstd 3\tmksquashfs\t3.0
packsize\tzstd 3\tsqfuse\t1000
packsize\tzstd 3\tmksquashfs\t1000
packrss\tzstd 3\tsqfuse\t30
packrss\tzstd 3\tmksquashfs\t500
verity\tcold tar (/usr/share)\tsqfuse\t2.0
verity\tcold tar (/usr/share)\tsqfuse+verity\t2.2
verity\tcold tar (/usr/share)\tsqfuse+verity\t2.6
verity\tpack /usr/share\tsqfuse\t1.0
verity\tpack /usr/share\tsqfuse+verity\t1.2
layers\tcold find -ls (5 layers)\tsqfuse-layered\t2.6
layers\tcold find -ls (5 layers)\tfuse-overlayfs\t13.0
layers\tcold find -ls (5 layers)\tkernel-overlayfs\t1.5
layers\tcold find -ls (5 layers)\tsqfuse-flat\t2.0
layerscpu\tcold find -ls (5 layers)\tsqfuse-layered\t1.5
layerscpu\tcold find -ls (5 layers)\tfuse-overlayfs\t6.0
layersiops\tfio (IOPS)\tsqfuse-layered\t20000
layersiops\tfio (IOPS)\tfuse-overlayfs\t4000
layersiops\tfio (IOPS)\tkernel-overlayfs\t90000
layersiops\tfio (IOPS)\tsqfuse-flat\t30000
"""


class Report(unittest.TestCase):
    def run_report(self):
        with tempfile.TemporaryDirectory() as d:
            tsv, md, svg = (os.path.join(d, n) for n in ("r.tsv", "b.md", "b.svg"))
            with open(tsv, "w") as f:
                f.write(RESULTS)
            subprocess.run([sys.executable, os.path.join(HERE, "report.py"), tsv, md, svg],
                           check=True, capture_output=True)
            with open(md) as m, open(svg) as g:
                return m.read(), g.read()

    def test_best_of_rounds_ratios_and_targets(self):
        md, _ = self.run_report()
        # Best tar time is 5.0 s: 20 / 5 = 4x squashfuse_ll, but 1.25x the
        # kernel's 4.0 s misses the 0.9x target.
        self.assertIn("| cold tar -cf - . \\| wc -c (/usr/share) | 5.00 s | 20.00 s | 4.00 s | 4.00x | 0.80x | 1.25x squashfuse_ll, at most 0.9x the kernel's time: **not met** |", md)
        # Request counts: the fewest reads, counters not recorded as "-".
        self.assertIn("| cold tar -cf - . \\| wc -c (/usr/share) | - | - | - | - | 6,300 | 41,000 | - | 512 MiB |", md)
        # Server CPU above squashfuse_ll's misses; the machine's row has no target.
        self.assertIn("CPU of the FUSE server (user+sys) | 3.00 s | 2.50 s | (in the kernel) | 0.83x | - | at most squashfuse_ll's: **not met** |", md)
        self.assertIn("CPU of the whole machine | 4.00 s | 4.00 s | 2.00 s | 1.00x | 0.50x | - |", md)
        # The scale tree's memory target is 0.25x, not /usr/share's 0.1x.
        self.assertIn("| scale tree | 10.00 s | 20.00 s | 0.50 |", md)
        self.assertIn("| 0.200 | time <= 0.8, size <= 1, RSS <= 0.25: met |", md)
        # find -ls at 1.4x the kernel's time misses the 1.3x target.
        self.assertIn("within 1.3x of the kernel: **not met**", md)
        # Highest IOPS counts: 150k = 50x squashfuse_ll, 0.75 of the kernel.
        self.assertIn("| 150.0k | 3.0k | 200.0k | 50.00x | 0.75x | 10x squashfuse_ll, half the kernel: met |", md)
        self.assertIn("| zstd 3 | 2.00 s | 3.00 s | 0.67 |", md)
        self.assertIn("| 0.060 | time <= 0.8, size <= 1, RSS <= 0.1: met |", md)
        self.assertIn("2 cores (test)", md)

    def test_verity_overhead_against_its_own_targets(self):
        md, _ = self.run_report()
        # Best with verity is 2.2 s over 2.0 s: 1.10x, under the mount's 1.15x.
        self.assertIn("| cold tar (/usr/share) | 2.00 s | 2.20 s | 1.10x | at most 1.15x: met |", md)
        # Pack at 1.2x misses its 1.1x target.
        self.assertIn("| pack /usr/share | 1.00 s | 1.20 s | 1.20x | at most 1.1x: **not met** |", md)

    def test_layers_against_fuse_overlayfs_and_the_flat_image(self):
        md, _ = self.run_report()
        # 13 / 2.6 = 5x fuse-overlayfs; 2.6 / 2.0 = 1.3x flat: at the limit, met.
        self.assertIn("| cold find -ls (5 layers) | 2.60 s | 13.00 s | 1.50 s | 2.00 s | 5.00x | 1.30x | faster than fuse-overlayfs, within 1.3x of flat: met |", md)
        self.assertIn("CPU of the FUSE servers | 1.50 s CPU | 6.00 s CPU | (in the kernel) |", md)
        # IOPS: 20k over 4k = 5x; flat's 30k over 20k = 1.5x misses 1.3x.
        self.assertIn("| 20.0k | 4.0k | 90.0k | 30.0k | 5.00x | 1.50x | faster than fuse-overlayfs, within 1.3x of flat: **not met** |", md)

    def test_chart_has_a_bar_per_contender(self):
        _, svg = self.run_report()
        self.assertTrue(svg.startswith("<svg"))
        self.assertEqual(svg.count("<rect "), 1 + 6 + 2)  # background, 3 workloads x 2, 2 packs
        self.assertIn("4.00x", svg)


LAUNCH = """#rounds\t2
launch\tpython, zstd, cold\tsqfuse\t2.0
launch\tpython, zstd, cold\tsqfuse\t1.6
launch\tpython, zstd, cold\tsquashfuse_ll\t3.2
launch\tpython, zstd, cold\tkernel\t1.7
launch\tpython, zstd, cold\tlocal\t1.0
launch\tpython, zstd, cold\tsqfuse+ordered\t1.2
launch\tpython, zstd, warm\tsqfuse\t1.1
launch\tpython, zstd, warm\tkernel\t1.0
launchreq\tpython, zstd, cold\tsqfuse lookup\t10
launchreq\tpython, zstd, cold\tsqfuse read\t5
launchreq\tpython, zstd, cold\tsqfuse bytes_decompressed\t2097152
launchreq\tpython, zstd, cold\tsquashfuse_ll lookup\t30
launchreq\tpython, zstd, cold\tsquashfuse_ll init\t1
mountstat\tmount + stat + unmount, warm\tsqfuse\t0.006
mountstat\tmount + stat + unmount, warm\tsquashfuse_ll\t0.005
"""


class LaunchReport(unittest.TestCase):
    def run_launch(self, existing):
        with tempfile.TemporaryDirectory() as d:
            tsv, md = os.path.join(d, "l.tsv"), os.path.join(d, "b.md")
            with open(tsv, "w") as f:
                f.write(LAUNCH)
            with open(md, "w") as f:
                f.write(existing)
            for _ in range(2):  # a second run replaces the section, not adds one
                subprocess.run([sys.executable, os.path.join(HERE, "launch-report.py"), tsv, md],
                               check=True, capture_output=True)
            with open(md) as m:
                return m.read()

    def test_ratios_targets_and_requests(self):
        md = self.run_launch("# Benchmarks\n\nbody\n")
        self.assertTrue(md.startswith("# Benchmarks\n\nbody\n"))
        self.assertEqual(md.count("<!-- launch:begin -->"), 1)
        # Best cold sqfuse 1.6 s: squashfuse_ll 3.2 / 1.6 = 2x; kernel 1.7 / 1.6.
        self.assertIn("| python, zstd, cold | 1.60 s | 3.20 s | 1.70 s | 1.00 s | - | 1.20 s | 2.00x | 1.06x | 2.67x | 1.20x |", md)
        self.assertIn("python, zstd, cold: sqfuse ≥ 1.25x squashfuse_ll: met", md)
        self.assertIn("python, zstd, cold: sqfuse ≥ 1.1x kernel: **not met**", md)
        self.assertIn("python, zstd, cold: with a profile within 1.3x of the local directory: met", md)
        self.assertIn("python, zstd, warm: sqfuse no slower than the kernel: **not met**", md)
        # init is not a request the program caused; decompressed bytes in MiB.
        self.assertIn("| python, zstd, cold | sqfuse | 10 | 5 | 15 | 2 MiB |", md)
        self.assertIn("| python, zstd, cold | squashfuse_ll | 30 | 0 | 30 | - |", md)
        self.assertIn("mount + stat + unmount, warm: no slower than squashfuse_ll: **not met**", md)

    def test_report_py_keeps_the_launch_section(self):
        md = self.run_launch("# Benchmarks\n")
        with tempfile.TemporaryDirectory() as d:
            tsv, out, svg = (os.path.join(d, n) for n in ("r.tsv", "b.md", "b.svg"))
            with open(tsv, "w") as f:
                f.write(RESULTS)
            with open(out, "w") as f:
                f.write(md)
            subprocess.run([sys.executable, os.path.join(HERE, "report.py"), tsv, out, svg],
                           check=True, capture_output=True)
            with open(out) as m:
                new = m.read()
        self.assertIn("| cold tar -cf - . \\| wc -c (/usr/share) | 5.00 s", new)
        self.assertIn("| python, zstd, cold | 1.60 s |", new)


if __name__ == "__main__":
    unittest.main()
