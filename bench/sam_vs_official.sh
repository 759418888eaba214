#!/usr/bin/env bash
# `nucleisam sam` against the official segment-anything predictor, as whole processes (load the
# checkpoint, read the image, embed, one point prompt with 3 masks, write the masks), alternated in
# rounds, with wall time and peak RSS from /usr/bin/time, and the masks' IoU against the official ones.
#
#   bench/sam_vs_official.sh <segment-anything checkout> <sam_vit_b.pth> <image> [rounds] [threads]
#
# Needs Debian's python3-torch and python3-torchvision for the reference (never for nucleisam). With
# no official checkpoint at hand, make a random-weight one (the cost does not depend on the values):
#   python3 -c "import sys,torch; sys.path.insert(0,'<checkout>'); from segment_anything import \
#     sam_model_registry as r; torch.manual_seed(0); torch.save(r['vit_b']().state_dict(), 'vit_b.pth')"
set -euo pipefail
cd "$(dirname "$0")/.."
SA=$1 CK=$2 IMG=$3 ROUNDS=${4:-2} T=${5:-2}
B=${NUCLEISAM:-build/nucleisam}
PY=${PYTHON:-/usr/bin/python3}  # Debian's, with python3-torch
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cat > "$OUT/official.py" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
from PIL import Image
from segment_anything import sam_model_registry, SamPredictor
torch.set_num_threads(int(sys.argv[5]))
predictor = SamPredictor(sam_model_registry["vit_b"](checkpoint=sys.argv[2]))
with torch.no_grad():
    predictor.set_image(np.array(Image.open(sys.argv[3]).convert("RGB")))
    masks, _, _ = predictor.predict(point_coords=np.array([[500, 400]]), point_labels=np.array([1]),
                                    multimask_output=True)
os.makedirs(sys.argv[4], exist_ok=True)
for i, m in enumerate(masks):
    Image.fromarray((m * 255).astype(np.uint8)).save(f"{sys.argv[4]}/mask_{i}.png")
PY
timed() {  # label, command...: prints "label: wall s, peak MB"
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$OUT/time" "$@" > /dev/null 2>&1
  read -r wall kb < "$OUT/time"
  echo "$label: wall ${wall} s, peak RSS $((kb / 1024)) MiB"
}
# The OpenBLAS kernels nucleisam asks for on this CPU (docs/building.md), if it asks for any: the
# official predictor runs a second time with them, so the comparison does not rest on OpenBLAS
# falling back to generic kernels for both.
CORE=$("$B" --version | sed -n 's/^BLAS: OpenBLAS \([A-Za-z0-9]*\) kernels (set by nucleisam.*/\1/p')
echo "nucleisam: $("$B" --version | grep '^BLAS')"
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r"
  OPENBLAS_NUM_THREADS=$T timed "official fp32" "$PY" "$OUT/official.py" "$SA" "$CK" "$IMG" "$OUT/official" "$T"
  if [ -n "$CORE" ]; then
    OPENBLAS_CORETYPE=$CORE OPENBLAS_NUM_THREADS=$T timed "official fp32, OPENBLAS_CORETYPE=$CORE" \
      "$PY" "$OUT/official.py" "$SA" "$CK" "$IMG" "$OUT/official_core" "$T"
  fi
  for cfg in "onednn fp32" "blas fp32" "onednn bf16"; do
    set -- $cfg
    NUCLEISAM_FP32_GEMM=$1 timed "nucleisam $2 ($1)" "$B" --threads "$T" --quiet sam --checkpoint "$CK" \
      --image "$IMG" --point 500,400 --multimask --precision "$2" --out "$OUT/$1_$2"
  done
done
"$PY" - "$OUT" <<'PY'
import sys, numpy as np
from PIL import Image
out = sys.argv[1]
for run in ("onednn_fp32", "blas_fp32", "onednn_bf16"):
    ious = []
    for i in range(3):
        a = np.array(Image.open(f"{out}/official/mask_{i}.png")) > 0
        b = np.array(Image.open(f"{out}/{run}/mask_{i}.png")) > 0
        u = (a | b).sum()
        ious.append((a & b).sum() / u if u else 1.0)
    print(f"mask IoU vs official, {run}: " + " ".join("%.4f" % v for v in ious))
PY
