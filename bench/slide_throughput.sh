#!/usr/bin/env bash
# Whole-slide throughput and peak memory of `nucleisam segment` on slides built from real tiles.
# Builds (once) square test slides of the given sizes with bench_make_slide (MoNuSeg test tiles,
# JPEG tiled pyramid, Aperio description with 0.25 um/px), segments each with the given method,
# and prints one table row per slide: megapixels/s and nuclei/s (wall), peak resident memory
# (GNU time), and the time per stage from the slide summary (stages overlap: their sum can exceed
# the wall time).
#
# NUCLEISAM_BENCH_ISLANDS=SPACING builds glass slides with one tissue island (a MoNuSeg tile) per
# SPACING x SPACING cell instead of tissue everywhere (multi-gigapixel slides that tissue detection
# reduces to a few hundred tiles). Columns: tissue tiles of all tiles; MP/s over the slide's area.
#
#   bench/slide_throughput.sh BUILD_DIR WORK_DIR METHOD SIZE...
#   bench/slide_throughput.sh build /tmp/slides classical 6144 12288
#   NUCLEISAM_BENCH_ISLANDS=12500 bench/slide_throughput.sh build /tmp/slides classical 50000 100000
set -euo pipefail
build=$(cd "$1" && pwd); work=$2; method=$3; shift 3
tiles=${NUCLEISAM_BENCH_TILES:-$(dirname "$0")/../../shared/data/monuseg/test/images}
islands=${NUCLEISAM_BENCH_ISLANDS:-0}
mkdir -p "$work"
echo "| slide | method | tissue tiles | nuclei | wall s | MP/s | nuclei/s | peak RSS MB | read | pre | model | post | write |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for size in "$@"; do
  name="s$size"; [ "$islands" = 0 ] || name="s${size}_i$islands"
  slide="$work/$name.svs"
  [ -f "$slide" ] || "$build/bench/bench_make_slide" --tiles "$tiles" --size "$size" --mpp 0.25 \
    --islands "$islands" --out "$slide" >&2
  out="$work/out_${method//\//_}_$size"
  rm -rf "$out"
  /usr/bin/time -v "$build/nucleisam" --quiet segment --model "$method" --input "$slide" --out "$out" \
    2> "$out.time.txt" || { cat "$out.time.txt" >&2; exit 1; }
  rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$out.time.txt")
  s="$out/${name}_summary.json"
  num() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p" "$s" | head -1; }
  wall=$(num wall); nuclei=$(num nuclei); tt="$(num tissue_tiles) of $(num tiles)"
  awk -v size="$size" -v m="$method" -v tt="$tt" -v n="$nuclei" -v w="$wall" -v rss="$rss_kb" \
      -v r="$(num read)" -v p="$(num preprocess)" -v mo="$(num model)" -v po="$(num postprocess)" -v wr="$(num write)" \
      'BEGIN { printf "| %dx%d | %s | %s | %d | %.1f | %.2f | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f |\n",
               size, size, m, tt, n, w, size*size/1e6/w, n/w, rss/1024, r, p, mo, po, wr }'
done
