#!/usr/bin/env bash
# What resuming a folder run costs when one image is left: the run's table (segment_summary.csv)
# holds the resolution judged for the images that record none, so the resumed run segments the
# image left and nothing else; without the table (as before it existed) it samples and judges again.
# A full run first, then TRIALS alternated pairs: the last image's nucleus table removed, resumed
# with the full run's table in place ("kept") and with it removed ("lost"). Prints each time and
# the medians.
#
#   bench/resume_cost.sh BUILD_DIR WORK_DIR IMAGE_FOLDER [TRIALS] [segment options...]
#   bench/resume_cost.sh build /tmp/resume ../shared/data/monuseg/test/images 3
set -euo pipefail
build=$(cd "$1" && pwd); work=$2; input=$3; trials=${4:-3}
shift 3; [ $# -gt 0 ] && shift
bin="$build/nucleisam"
out="$work/out"
rm -rf "$out"; mkdir -p "$work"
seconds() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null 2>&1 || true; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
full=$(seconds "$bin" segment --input "$input" --out "$out" --formats csv "$@")
last=$(ls "$input" | sort | tail -1); last=${last%.*}
echo "full run: $full s ($(($(wc -l < "$out/segment_summary.csv") - 1)) rows)"
cp "$out/segment_summary.csv" "$work/table.csv"
kept=(); lost=()
for ((t = 0; t < trials; t++)); do
  rm -f "$out/${last}_nuclei.csv"
  cp "$work/table.csv" "$out/segment_summary.csv"
  kept+=("$(seconds "$bin" segment --input "$input" --out "$out" --formats csv "$@")")
  rm -f "$out/${last}_nuclei.csv" "$out/segment_summary.csv"
  lost+=("$(seconds "$bin" segment --input "$input" --out "$out" --formats csv "$@")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "resumed, table kept: ${kept[*]} s; median $(median "${kept[@]}")"
echo "resumed, table lost: ${lost[*]} s; median $(median "${lost[@]}")"
