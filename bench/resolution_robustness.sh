#!/usr/bin/env bash
# Images that are not at the model's resolution: each test split is written again as a scanner at
# another magnification would give it (bench_shift_dataset: area-averaged images, nearest-centre
# labels), then segmented with the model's resolution assumed (`--unknown-mpp model`), with the
# default (the magnification judged from a sample's nuclei; the verdict goes to stderr) and with
# `--mpp`, and scored with `eval`. One table row per arm: instance metrics, the typed mPQ+ where the
# split has classes, and the segment wall time.
#
#   bench/resolution_robustness.sh BUILD_DIR WORK_DIR [MODEL SPLIT FACTOR]...
#   bench/resolution_robustness.sh build /tmp/res he-nuclei monuseg/test 0.5 he-nuclei-classes consep256/test 0.5
# SPLIT is relative to ../shared/data; the model's resolution is taken as 0.25 um/px (the shipped
# models'), so the image resolution given with --mpp is 0.25 / FACTOR. Factor 1 scores the split as
# it is (the reference row).
set -euo pipefail
build=$(cd "$1" && pwd); work=$2; shift 2
data=${NUCLEISAM_BENCH_DATA:-$(cd "$(dirname "$0")/../../shared/data" && pwd)}
mkdir -p "$work"
echo "| model | split | scale | resolution | Dice | AJI | PQ | object F1 (P / R) | mAP | mPQ+ | segment s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
while [ $# -ge 3 ]; do
  model=$1; split=$2; factor=$3; shift 3
  tag="${split//\//_}_$factor"
  gt="$data/$split"
  if [ "$factor" != 1 ]; then
    gt="$work/$tag"
    [ -d "$gt/images" ] || "$build/bench/bench_shift_dataset" --data "$data/$split" --factor "$factor" --out "$gt" >&2
  fi
  # Arms: the model's resolution assumed (--unknown-mpp model), the default (the magnification
  # judged from a sample's nuclei), and the resolution given with --mpp (not for factor 1).
  arms=("model" "estimate")
  [ "$factor" = 1 ] || arms+=("$(python3 -c "print(round(0.25 / $factor, 4))")")
  for arm in "${arms[@]}"; do
    case $arm in
      model) args=(--unknown-mpp model) ;;
      estimate) args=() ;;
      *) args=(--mpp "$arm") ;;
    esac
    out="$work/out_${model}_${tag}_${arm}"
    rm -rf "$out" "$out.eval"
    start=$(date +%s.%N)
    "$build/nucleisam" segment --model "$model" --input "$gt/images" --out "$out" --formats labels,csv \
      "${args[@]}" 2> "$out.log" || { cat "$out.log" >&2; exit 1; }
    end=$(date +%s.%N)
    grep -h "images that record no resolution are taken" "$out.log" | sed 's/^/  /' >&2 || true
    "$build/nucleisam" --quiet eval --pred "$out" --gt "$gt" --out "$out.eval" >/dev/null
    python3 "$(dirname "$0")/eval_row.py" "$out.eval/summary.json" "$start" "$end" "$model" "$split" "x$factor" "$arm"
  done
done
