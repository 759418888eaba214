#!/usr/bin/env bash
# Images that are not at the model's resolution: each test split is written again as a scanner at
# another magnification would give it (bench_shift_dataset: area-averaged images, nearest-centre
# labels), then segmented with and without `--mpp` and scored with `eval`. One table row per arm:
# instance metrics, the typed mPQ+ where the split has classes, and the segment wall time.
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
echo "| model | split | scale | --mpp | Dice | AJI | PQ | object F1 (P / R) | mAP | mPQ+ | segment s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
while [ $# -ge 3 ]; do
  model=$1; split=$2; factor=$3; shift 3
  tag="${split//\//_}_$factor"
  gt="$data/$split"
  if [ "$factor" != 1 ]; then
    gt="$work/$tag"
    [ -d "$gt/images" ] || "$build/bench/bench_shift_dataset" --data "$data/$split" --factor "$factor" --out "$gt" >&2
  fi
  mpps=("")
  [ "$factor" = 1 ] || mpps+=("$(python3 -c "print(round(0.25 / $factor, 4))")")
  for mpp in "${mpps[@]}"; do
    out="$work/out_${model}_${tag}_${mpp:-none}"
    rm -rf "$out" "$out.eval"
    start=$(date +%s.%N)
    "$build/nucleisam" --quiet segment --model "$model" --input "$gt/images" --out "$out" --formats labels,csv \
      ${mpp:+--mpp "$mpp"}
    end=$(date +%s.%N)
    "$build/nucleisam" --quiet eval --pred "$out" --gt "$gt" --out "$out.eval" >/dev/null
    python3 "$(dirname "$0")/eval_row.py" "$out.eval/summary.json" "$start" "$end" "$model" "$split" "x$factor" "${mpp:--}"
  done
done
