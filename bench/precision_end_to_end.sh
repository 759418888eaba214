#!/usr/bin/env bash
# The whole `segment` job in fp32 against bf16 on this CPU: TRIALS alternated runs of each over a
# labelled split (every image redone, label maps only), the wall time of each, their medians and ratio,
# and each precision's scores from `eval` (AJI, PQ, Dice) against the split's labels. Says what
# `--precision auto` picks here (nucleisam --version).
#
#   bench/precision_end_to_end.sh BUILD_DIR WORK_DIR SPLIT [TRIALS] [segment options...]
#   bench/precision_end_to_end.sh build /tmp/prec ../shared/data/monuseg/test 3
set -euo pipefail
build=$(cd "$1" && pwd); work=$2; split=$3; trials=${4:-3}
shift 3; [ $# -gt 0 ] && shift
bin="$build/nucleisam"
mkdir -p "$work"
"$bin" --version | grep '^CPU:'
seconds() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
declare -A times
for ((t = 0; t < trials; t++)); do
  for p in fp32 bf16; do
    times[$p]+="$(seconds "$bin" segment --input "$split" --out "$work/$p" --formats labels --overwrite \
                  --precision "$p" "$@") "
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
for p in fp32 bf16; do
  "$bin" eval --pred "$work/$p" --gt "$split" --out "$work/eval_$p" > "$work/eval_$p.log" 2>&1
  scores=$(python3 -c "import json; b = json.load(open('$work/eval_$p/summary.json'))['binary']
print(', '.join('%s %.4f' % (k, b[k]['mean']) for k in ('aji', 'pq', 'dice')))")
  echo "$p: runs ${times[$p]}s, median $(median ${times[$p]}) s; $scores"
done
echo "fp32 / bf16 time: $(echo "$(median ${times[fp32]}) / $(median ${times[bf16]})" | bc -l | cut -c1-5)"
