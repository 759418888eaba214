#!/usr/bin/env python3
"""How the magnification judgement of `segment` (include/nucleisam/infer/magnification.h) fares on
random samples of a split: reads the per-image nucleus CSVs of two `segment` runs over the same
images, one with the images taken at the model's resolution (`--unknown-mpp model`) and one taken
at half the magnification (`--mpp` twice the model's um/px), draws random samples of SIZE images
(as the run samples up to 16), and prints the range of the sample's median nucleus diameter at the
model's resolution, of the mean-score gap (half magnification minus model's) and how often the
rule would choose half the magnification.

    bench/magnification_samples.py AS_IS_DIR HALF_DIR [MODEL_MPP] [SIZE] [TRIALS]

    build/nucleisam segment --unknown-mpp model --formats csv --input IMAGES --out /tmp/as_is
    build/nucleisam segment --mpp 0.5 --formats csv --input IMAGES --out /tmp/half
    bench/magnification_samples.py /tmp/as_is /tmp/half 0.25

The rule (MagnificationRule's defaults): at least 30 nuclei, median under 4.2 um at the model's
resolution, and at half the magnification at least 30 nuclei of median 3.5-10 um with a mean score
at least the first's minus 0.02.
"""
import csv
import glob
import math
import os
import random
import statistics
import sys


def nuclei(path, mpp):
    rows = list(csv.DictReader(open(path)))
    return ([2 * math.sqrt(int(r["area"]) / math.pi) * mpp for r in rows], [float(r["score"]) for r in rows])


def main():
    as_is, half = sys.argv[1], sys.argv[2]
    mpp = float(sys.argv[3]) if len(sys.argv) > 3 else 0.25
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    trials = int(sys.argv[5]) if len(sys.argv) > 5 else 200
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(as_is, "*_nuclei.csv"))
                   if os.path.exists(os.path.join(half, os.path.basename(p))))
    if not names:
        sys.exit("no nucleus CSV present in both folders")
    random.seed(1)
    medians, gaps, chosen = [], [], 0
    for _ in range(trials):
        d1, s1, d2, s2 = [], [], [], []
        for name in random.sample(names, min(size, len(names))):
            d, s = nuclei(os.path.join(as_is, name), mpp)
            d1 += d
            s1 += s
            d, s = nuclei(os.path.join(half, name), 2 * mpp)
            d2 += d
            s2 += s
        if len(d1) < 30 or len(d2) < 30:
            continue
        m1, m2 = statistics.median(d1), statistics.median(d2)
        gap = statistics.mean(s2) - statistics.mean(s1)
        medians.append(m1)
        gaps.append(gap)
        chosen += m1 < 4.2 and 3.5 <= m2 <= 10 and gap >= -0.02
    print(f"{len(names)} images, {len(medians)} samples of {size}: median diameter at {mpp} um/px "
          f"{min(medians):.2f}-{max(medians):.2f} um; mean-score gap {min(gaps):+.3f} to {max(gaps):+.3f}; "
          f"half the magnification chosen in {chosen} of {len(medians)}")


if __name__ == "__main__":
    main()
