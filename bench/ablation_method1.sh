#!/usr/bin/env bash
# Method-1 ablation (issue 8, the paper's Table 1 at our budget): U-Net, U-Net3+, eU-Net3+ and the
# SAM-guided eU-Net3+ (random-weight fixture encoder: its numbers say nothing about a real SAM)
# trained from scratch with the same recipe, width and budget (configs/ablation/*.json), then
# scored on the 5 held-out MoNuSeg training tiles (validation) and the 14 MoNuSeg test tiles with
# each model's default decoding (no tuning, so every row is decoded the same way).
#
#   bench/ablation_method1.sh [runs-dir] [threads]      (re-running resumes unfinished runs)
# Prints one table row per model: name, val Dice/AJI/PQ, test Dice/AJI/PQ, train seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${NUCLEISAM:-build/nucleisam}
RUNS=${1:-runs/ablation}
T=${2:-2}
DATA=../shared/data/monuseg
SAM=../shared/fixtures/sam/vit_tiny/sam_vit_tiny.pth
VAL="TCGA-A7-A13F-01Z-00-DX1 TCGA-B0-5711-01Z-00-DX1 TCGA-21-5786-01Z-00-DX1 TCGA-G9-6356-01Z-00-DX1 TCGA-NH-A8F7-01A-01-TS1"
mkdir -p "$RUNS"

# The validation tiles as their own dataset split (links, so nothing is copied).
V="$RUNS/val-split"
if [ ! -d "$V" ]; then
  mkdir -p "$V.tmp/images" "$V.tmp/instance_labels"
  for n in $VAL; do
    ln -s "$(realpath $DATA/train/images/$n.tif)" "$V.tmp/images/"
    for f in "$DATA"/train/instance_labels/"$n"*; do ln -s "$(realpath "$f")" "$V.tmp/instance_labels/"; done
  done
  mv "$V.tmp" "$V"
fi

summary() {  # summary.json -> "dice aji pq"
  python3 -c 'import json,sys; b=json.load(open(sys.argv[1]))["binary"]
print(" ".join("%.3f" % b[k]["mean"] for k in ("dice","aji","pq")))' "$1"
}

for name in unet unet3plus eunet3plus sam-eunet3plus-fixture; do
  run="$RUNS/$name"
  start=$(date +%s)
  if [ -f "$run/last.ckpt" ]; then
    "$B" --threads "$T" --quiet train --resume "$run"
  else
    "$B" --threads "$T" --quiet train --config "configs/ablation/$name.json" --out "$run"
  fi
  secs=$(( $(date +%s) - start ))
  extra=()
  [[ $name == sam-* ]] && extra=(--sam-checkpoint "$SAM")
  for split in val test; do
    if [ $split = val ]; then in="$V/images"; gt="$V"; else in="$DATA/test/images"; gt="$DATA/test"; fi
    out="$run/$split"
    if [ ! -f "$out/eval/summary.json" ]; then
      "$B" --threads "$T" --quiet segment --model "$run/best.safetensors" "${extra[@]}" \
        --input "$in" --out "$out/pred" --formats labels
      "$B" --threads "$T" --quiet eval --pred "$out/pred" --gt "$gt" --out "$out/eval" > /dev/null
    fi
  done
  echo "$name | $(summary "$run/val/eval/summary.json") | $(summary "$run/test/eval/summary.json") | ${secs}s"
done
