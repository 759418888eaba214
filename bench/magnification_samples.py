#!/usr/bin/env python3
"""How the magnification judgement of `segment` (include/nucleisam/infer/magnification.h) fares on
random samples of a split: reads the per-image nucleus CSVs of `segment` runs over the same images,
one with the images taken at the model's resolution (`--unknown-mpp model`) and one or two with
them taken at another: half the magnification (`--mpp` twice the model's um/px: the images are
enlarged) and twice the magnification (`--mpp` half the model's: shrunk). It draws random samples
of SIZE images (as the run samples up to 16) and prints, per sample kind, the range of the sample's
median nucleus diameter at the model's resolution, of the mean-score gaps (other minus as is) and
how often the rule chooses each resolution.

    bench/magnification_samples.py AS_IS_DIR [--half DIR] [--double DIR] [--mpp 0.25] [--size 16] [--trials 200]
                                   [--higher-score-gain 0.015 ...: any threshold of RULE]

    build/nucleisam segment --unknown-mpp model --formats csv --input IMAGES --out /tmp/as_is
    build/nucleisam segment --mpp 0.5 --formats csv --input IMAGES --out /tmp/half
    build/nucleisam segment --mpp 0.125 --formats csv --input IMAGES --out /tmp/double
    bench/magnification_samples.py /tmp/as_is --half /tmp/half --double /tmp/double

The rule (MagnificationRule's defaults, mirrored in RULE below): at least 30 nuclei; when their
median diameter at the model's resolution is under 4.2 um, half the magnification is chosen if
there its nuclei (at least 30) measure 3.5-10 um (median) and its mean score is at least the
first's minus 0.02; otherwise twice the magnification is chosen if there its nuclei (at least 30)
measure 3.5-10 um and its mean score is at least the first's plus 0.015. A
folder missing from a run's CSVs leaves that image out of every sample.
"""
import argparse
import csv
import glob
import math
import os
import random
import statistics

RULE = dict(min_nuclei=30, try_lower_below_um=4.2, score_margin=0.02, higher_score_gain=0.015,
            min_diameter_um=3.5, higher_min_diameter_um=4.0, max_diameter_um=10)


def nuclei(path, mpp):
    rows = list(csv.DictReader(open(path)))
    return ([2 * math.sqrt(int(r["area"]) / math.pi) * mpp for r in rows], [float(r["score"]) for r in rows])


def pooled(folder, names, mpp):
    d, s = [], []
    for name in names:
        a, b = nuclei(os.path.join(folder, name), mpp)
        d += a
        s += b
    return d, s


def plausible(d, smallest):
    return len(d) >= RULE["min_nuclei"] and smallest <= statistics.median(d) <= RULE["max_diameter_um"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("as_is")
    p.add_argument("--half")
    p.add_argument("--double")
    p.add_argument("--mpp", type=float, default=0.25)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--trials", type=int, default=200)
    for key in RULE:  # to try other thresholds
        p.add_argument("--" + key.replace("_", "-"), type=type(RULE[key]), default=RULE[key])
    a = p.parse_args()
    RULE.update({key: getattr(a, key) for key in RULE})
    folders = [f for f in (a.as_is, a.half, a.double) if f]
    names = sorted(os.path.basename(x) for x in glob.glob(os.path.join(a.as_is, "*_nuclei.csv"))
                   if all(os.path.exists(os.path.join(f, os.path.basename(x))) for f in folders))
    if not names:
        raise SystemExit("no nucleus CSV present in every folder")
    if a.size < 1:
        raise SystemExit("--size must be at least 1")
    random.seed(1)
    medians, tried = [], {"half": 0, "double": 0}
    gaps, other_medians = {"half": [], "double": []}, {"half": [], "double": []}
    verdicts = {a.mpp: 0, 2 * a.mpp: 0, a.mpp / 2: 0}
    for _ in range(a.trials):
        sample = random.sample(names, min(a.size, len(names)))
        d1, s1 = pooled(a.as_is, sample, a.mpp)
        if len(d1) < RULE["min_nuclei"]:
            continue
        m1 = statistics.median(d1)
        medians.append(m1)
        chosen = a.mpp
        if m1 < RULE["try_lower_below_um"]:
            if not a.half:
                verdicts[chosen] += 1  # the run would try half the magnification: not simulated
                continue
            kind, other = "half", 2 * a.mpp
        elif a.double:
            kind, other = "double", a.mpp / 2
        else:
            verdicts[chosen] += 1
            continue
        tried[kind] += 1
        d2, s2 = pooled(a.half if kind == "half" else a.double, sample, other)
        if not s2:
            verdicts[chosen] += 1
            continue
        gap = statistics.mean(s2) - statistics.mean(s1)
        gaps[kind].append(gap)
        other_medians[kind].append(statistics.median(d2))
        if kind == "half":
            fits = plausible(d2, RULE["min_diameter_um"]) and gap >= -RULE["score_margin"]
        else:
            fits = plausible(d2, RULE["higher_min_diameter_um"]) and gap >= RULE["higher_score_gain"]
        if fits:
            chosen = other
        verdicts[chosen] += 1
    def seen(kind):
        if not gaps[kind]:
            return f"{tried[kind]}"
        return (f"{tried[kind]} (there median {min(other_medians[kind]):.2f}-{max(other_medians[kind]):.2f} um, "
                f"mean-score gap {min(gaps[kind]):+.3f} to {max(gaps[kind]):+.3f})")
    if not medians:
        raise SystemExit(f"no sample of {a.size} has {RULE['min_nuclei']} nuclei")
    print(f"{len(names)} images, {len(medians)} samples of {a.size}: median diameter at {a.mpp} um/px "
          f"{min(medians):.2f}-{max(medians):.2f} um; tried at half the magnification {seen('half')}, "
          f"at twice it {seen('double')}; judged " + ", ".join(f"{m:g} um/px {n}" for m, n in verdicts.items()))


if __name__ == "__main__":
    main()
