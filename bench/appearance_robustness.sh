#!/usr/bin/env bash
# Images from other labs and scanners: a test split is written again with one appearance shift
# (bench_shift_dataset: stain amounts, scanner colour, focus blur, JPEG; labels unchanged), then
# segmented once per arm (extra `segment` options, e.g. none and `--stain-normalize`) and scored
# with `eval`. One table row per shift and arm.
#
#   bench/appearance_robustness.sh BUILD_DIR WORK_DIR MODEL SPLIT ARMS SHIFT...
#   bench/appearance_robustness.sh build /tmp/app he-nuclei monuseg/test '|--stain-normalize' \
#       '' '--stain 0.6,1.0' '--blur 1.5' '--jpeg 40'
# SPLIT is relative to ../shared/data. ARMS separates the arms' option strings with '|' (an empty
# one is the plain run). A SHIFT is bench_shift_dataset's options; an empty one scores the split
# as it is (the reference row).
set -euo pipefail
build=$(cd "$1" && pwd); work=$2; model=$3; split=$4; arms=$5; shift 5
data=${NUCLEISAM_BENCH_DATA:-$(cd "$(dirname "$0")/../../shared/data" && pwd)}
mkdir -p "$work"
IFS='|' read -r -a arm_list <<< "$arms|"
echo "| model | split | shift | options | Dice | AJI | PQ | object F1 (P / R) | mAP | mPQ+ | segment s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for shift_options in "$@"; do
  tag=$(echo "${split}_${shift_options:-none}" | tr -c 'A-Za-z0-9.\n' '_')
  gt="$data/$split"
  if [ -n "$shift_options" ]; then
    gt="$work/$tag"
    # shellcheck disable=SC2086  # the shift's options are words
    [ -d "$gt/images" ] || "$build/bench/bench_shift_dataset" --data "$data/$split" $shift_options --out "$gt" >&2
  fi
  for arm in "${arm_list[@]}"; do
    out="$work/out_$(basename "$model")_${tag}_$(echo "${arm:-plain}" | tr -c 'A-Za-z0-9.\n' '_')"
    rm -rf "$out" "$out.eval"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086  # the arm's options are words
    "$build/nucleisam" --quiet segment --model "$model" --input "$gt/images" --out "$out" --formats labels,csv $arm
    end=$(date +%s.%N)
    "$build/nucleisam" --quiet eval --pred "$out" --gt "$gt" --out "$out.eval" >/dev/null
    python3 "$(dirname "$0")/eval_row.py" "$out.eval/summary.json" "$start" "$end" "$model" "$split" \
      "${shift_options:-none}" "${arm:--}"
  done
done
