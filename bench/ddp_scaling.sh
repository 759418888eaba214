#!/usr/bin/env bash
# Data-parallel scaling on this CPU: the he-nuclei network (eU-Net3+, width 16, batch 8, 256 crops)
# trained for one epoch of 8 MoNuSeg tiles x 8 crops (8 steps) by 1 process with 1 thread, then by
# 2 processes with 1 thread each (c10d + Gloo on localhost). Prints samples/s of each and the share
# of the 2-process time spent in collectives. Results go to docs/BENCHMARKS.md.
#   bench/ddp_scaling.sh [build dir] [precision: fp32|bf16]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
precision=${2:-fp32}
bin=$build/nucleisam
shared=$(cd ../shared && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/recipe.json" <<JSON
{
  "name": "ddp-bench",
  "model": {"arch": "eunet3plus", "options": {"width": 16, "dropout": 0.1}, "distance_head": true},
  "data": {"train": [{"path": "$shared/data/monuseg/train",
                      "include": ["TCGA-18-5592-01Z-00-DX1", "TCGA-21-5784-01Z-00-DX1", "TCGA-21-5786-01Z-00-DX1",
                                  "TCGA-38-6178-01Z-00-DX1", "TCGA-49-4488-01Z-00-DX1", "TCGA-50-5931-01Z-00-DX1",
                                  "TCGA-A7-A13E-01Z-00-DX1", "TCGA-A7-A13F-01Z-00-DX1"]}],
           "crop_size": 256, "crops_per_image": 8},
  "train": {"epochs": 1, "batch_size": 8, "lr": 0.002, "precision": "$precision", "channels_last": true,
            "checkpoint_every": 0, "log_every": 1, "seed": 1}
}
JSON
# Seconds from the first to the last logged step (the first step pays one-time costs).
loop_seconds() { awk -F, '$1=="step"{s[++n]=$NF} END{printf "%.2f %d", s[n]-s[1], n-1}' "$1/log.csv"; }

"$bin" --threads 1 --quiet train --config "$work/recipe.json" --out "$work/one" >/dev/null
read -r t1 n1 <<<"$(loop_seconds "$work/one")"

port=$((20000 + RANDOM % 20000))
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port GLOO_SOCKET_IFNAME=lo \
    "$bin" --threads 1 train --distributed --config "$work/recipe.json" --out "$work/two" \
    >"$work/rank$r.out" 2>&1 &
done
wait
read -r t2 n2 <<<"$(loop_seconds "$work/two")"
share=$(grep -o 'broadcast .* s (.*%)' "$work/rank0.out" | head -1)

awk -v t1="$t1" -v n1="$n1" -v t2="$t2" -v n2="$n2" -v share="$share" -v p="$precision" 'BEGIN {
  s1 = n1 * 8 / t1; s2 = n2 * 8 / t2;
  printf "precision %s, steps timed %d / %d\n", p, n1, n2;
  printf "1 process x 1 thread : %.3f samples/s\n", s1;
  printf "2 processes x 1 thread: %.3f samples/s (%.2fx)\n", s2, s2 / s1;
  printf "rank 0 collectives (whole epoch): %s\n", share;
}'
