#!/usr/bin/env bash
# Large single images (not slides): segmented whole (--tile-size larger than the image) against the
# default, which cuts a processing grid over 4096 x 4096 into equal tiles of at most 4096 pixels
# (infer/image_resolution.h). The image is a COLS x ROWS mosaic of 1000 x 1000 MoNuSeg training
# tiles (their first ones in name order, labels renumbered into one map), so both arms are scored
# against its labels with `eval`; wall time and peak resident memory from GNU time. Arms alternate,
# TRIALS rounds. Needs /usr/bin/python3 with numpy and OpenCV (the mosaic only).
#
#   bench/large_image_tiling.sh BUILD_DIR WORK_DIR [COLS ROWS TRIALS]
#   bench/large_image_tiling.sh build /tmp/large 5 4 3
set -euo pipefail
build=$(cd "$1" && pwd); work=$2; cols=${3:-5}; rows=${4:-4}; trials=${5:-3}
data=${NUCLEISAM_BENCH_DATA:-$(cd "$(dirname "$0")/../../shared/data" && pwd)}
mkdir -p "$work/img" "$work/gt"
/usr/bin/python3 - "$data/monuseg/train" "$work" "$cols" "$rows" <<'EOF'
import os, sys
import cv2
import numpy as np
train, work, cols, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
names = sorted(os.listdir(train + "/images"))[: cols * rows]
image = np.zeros((rows * 1000, cols * 1000, 3), np.uint8)
labels = np.zeros((rows * 1000, cols * 1000), np.int32)
offset = 0
for k, name in enumerate(names):
    r, c = divmod(k, cols)
    tile = cv2.imread(f"{train}/images/{name}")[:1000, :1000]
    lab = cv2.imread(f"{train}/instance_labels/{name[:-4]}_label.png", cv2.IMREAD_UNCHANGED)[:1000, :1000]
    lab = np.where(lab > 0, lab.astype(np.int32) + offset, 0)
    offset = max(offset, int(lab.max()))
    image[r * 1000:(r + 1) * 1000, c * 1000:(c + 1) * 1000] = tile
    labels[r * 1000:(r + 1) * 1000, c * 1000:(c + 1) * 1000] = lab
assert offset < 65536
cv2.imwrite(f"{work}/img/mosaic.png", image)
cv2.imwrite(f"{work}/gt/mosaic.png", labels.astype(np.uint16))
EOF
echo "| arm | round | wall s | peak RSS MB | Dice | AJI | PQ | object F1 |"
echo "|---|---|---|---|---|---|---|---|"
for ((t = 1; t <= trials; t++)); do
  for arm in whole tiled; do
    extra=(); [ "$arm" = whole ] && extra=(--tile-size 1000000)
    rm -rf "$work/$arm" "$work/$arm.eval"
    /usr/bin/time -f "%e %M" -o "$work/time" "$build/nucleisam" --quiet segment --input "$work/img" \
      --out "$work/$arm" --mpp 0.25 --formats labels "${extra[@]}"
    "$build/nucleisam" --quiet eval --pred "$work/$arm" --gt "$work/gt" --out "$work/$arm.eval" > /dev/null
    read -r wall kb < "$work/time"
    scores=$(/usr/bin/python3 -c "
import json; b = json.load(open('$work/$arm.eval/summary.json'))['binary']
print('%.4f | %.4f | %.4f | %.4f' % (b['dice']['mean'], b['aji']['mean'], b['pq']['mean'], b['object_f1']['f1']))")
    echo "| $arm | $t | $wall | $((kb / 1024)) | $scores |"
  done
done
