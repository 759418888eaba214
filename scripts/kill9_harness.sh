#!/usr/bin/env bash
# Kill -9 anywhere: runs each long-running command (segment on nested folders, segment on a slide, train,
# eval) once uninterrupted as the reference, then again from scratch killing it with SIGKILL at a
# random moment N times, resuming it after each kill (the same command; `train --resume` once a
# checkpoint exists; a start that completes ends the run, and the next kills go to a fresh one),
# and checks:
#   - after every kill, each file under a final output name (not a hidden temporary or .part file)
#     is complete: byte-identical to the reference's (train: best.safetensors loads with `export`);
#   - after the last resume, every reference output exists and is byte-identical (except recorded
#     records of the run itself: train's log.csv `seconds` column, a slide summary's "seconds" and
#     "resumed_tiles" lines, of a folder's segment_summary.csv all but image, stem, status and
#     nuclei), and no hidden temporary is left (a resumed run removes those its killed
#     predecessors left); segment_summary.csv after a kill holds only rows the reference has.
# Inputs are made here from the bundled demo tile (copies, labels by the classical method, a slide
# by bench_make_slide), so it needs only the built binaries.
#
#   scripts/kill9_harness.sh [--kills N] [--seed S] [--only segment,slide,train,eval] [--quick]
#                            [--bin build/nucleisam] [--make-slide build/bench/bench_make_slide]
#                            [--work DIR] [--keep]
# --quick: 2 kills per command (default 20), small inputs (ctest runs this). Exit 0 when every check held,
# 1 with one line per failed check otherwise, 2 for a usage error.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/nucleisam"
make_slide="$root/build/bench/bench_make_slide"
kills=""
seed=$$
only="segment,slide,train,eval"
quick=0
work=""
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --kills) kills="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --quick) quick=1; shift ;;
    --bin) bin="$2"; shift 2 ;;
    --make-slide) make_slide="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "kill9_harness: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$kills" ] || kills=$([ "$quick" = 1 ] && echo 2 || echo 20)
[ -x "$bin" ] || { echo "kill9_harness: $bin: not an executable (build nucleisam first)" >&2; exit 2; }
RANDOM=$seed
if [ -z "$work" ]; then work="$(mktemp -d /tmp/kill9.XXXXXX)"; fi
mkdir -p "$work"
[ "$keep" = 1 ] || trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
note() { echo "kill9: $*"; }
ns() { date +%s%N; }

# ---- inputs -----------------------------------------------------------------------------------
demo="$root/assets/demo/he_tile.jpg"
[ -f "$demo" ] || { echo "kill9_harness: $demo missing" >&2; exit 2; }
images=$([ "$quick" = 1 ] && echo 4 || echo 12)
mkdir -p "$work/in" "$work/data/images" "$work/data/labels"
for i in $(seq 1 "$images"); do cp "$demo" "$work/in/tile$i.jpg"; done
"$bin" --quiet segment --model classical --formats labels --input "$work/in" --out "$work/labels" ||
  { echo "kill9_harness: could not make the labels" >&2; exit 1; }
# The folder run's input: the same tiles in nested folders (segment --recursive mirrors them).
mkdir -p "$work/nested/a" "$work/nested/b/c"
for i in $(seq 1 "$images"); do
  case $((i % 3)) in 0) cp "$demo" "$work/nested/tile$i.jpg" ;; 1) cp "$demo" "$work/nested/a/tile$i.jpg" ;;
    2) cp "$demo" "$work/nested/b/c/tile$i.jpg" ;; esac
done
for i in 1 2 3 4; do
  cp "$demo" "$work/data/images/s$i.jpg"
  cp "$work/labels/tile${i}_labels.tif" "$work/data/labels/s$i.tif"
done
epochs=$([ "$quick" = 1 ] && echo 2 || echo 4)
cat > "$work/recipe.json" <<EOF
{
  "name": "kill9",
  "model": {"arch": "unet", "options": {"width": 4, "depth": 3}},
  "data": {"train": [{"path": "$work/data", "exclude": ["s4"]}],
           "validation": {"path": "$work/data", "include": ["s4"]},
           "crop_size": 64, "crops_per_image": 4},
  "train": {"epochs": $epochs, "batch_size": 2, "lr": 0.003, "precision": "fp32", "checkpoint_every": 1,
            "seed": 5},
  "inference": {"tile_size": 64, "tile_overlap": 16}
}
EOF
slide_size=$([ "$quick" = 1 ] && echo 1024 || echo 3072)

# ---- one command --------------------------------------------------------------------------------
# cmd_<name> OUT: the command line (first start or resume) writing into OUT.
cmd_segment() { echo "$bin --quiet --threads 1 segment --model classical --input $work/nested --recursive --out $1"; }
cmd_slide() {
  echo "$bin --quiet --threads 1 segment --model classical --tile-size 256 --tile-overlap 32 --formats geojson,csv,labels,overlay --input $work/slide.svs --out $1"
}
cmd_eval() { echo "$bin --quiet --threads 1 eval --pred $work/flat_segment --gt $work/labels_gt --out $1"; }
cmd_train() {
  if [ -f "$1/last.ckpt" ]; then echo "$bin --quiet --threads 1 train --resume $1"
  else echo "$bin --quiet --threads 1 train --config $work/recipe.json --out $1"; fi
}

# Files under final names (not hidden), relative to $1.
finals() { (cd "$1" && find . -type f ! -name '.*' | sed 's|^\./||' | sort); }

# A folder run's summary as a killed run must leave it: image, stem, status and nuclei of each row
# (the rows of images finished after its last write are rebuilt from their nucleus tables on
# resume, without size, method, stains or time).
summary_rows() { cut -d, -f1,2,3,9 "$1"; }

# Compares one output with the reference's, except the wall-clock times these two files record:
# train's log.csv without its last (seconds) column, a slide summary without its "seconds" line
# and "resumed_tiles" (how many tiles this run found done: a record of the run, not of the slide).
same_as_ref() {
  local name="$1" got="$2" ref="$3" kind="$4"
  if [ "$kind" = train ] && [ "$(basename "$name")" = log.csv ]; then
    cmp -s <(sed 's/,[^,]*$//' "$got") <(sed 's/,[^,]*$//' "$ref")
  elif [ "$kind" = segment ] && [ "$name" = segment_summary.csv ]; then
    cmp -s <(summary_rows "$got") <(summary_rows "$ref")
  elif [ "$kind" = slide ] && [[ "$name" == *_summary.json ]]; then
    cmp -s <(grep -Ev '"(seconds|resumed_tiles)":' "$got") <(grep -Ev '"(seconds|resumed_tiles)":' "$ref")
  else
    cmp -s "$got" "$ref"
  fi
}

# Checks done after each kill: every file under a final name is complete.
check_after_kill() {
  local kind="$1" out="$2" ref="$3" round="$4" name
  [ -d "$out" ] || return 0
  for name in $(finals "$out"); do
    case "$kind" in
      train)
        if [ "$name" = best.safetensors ] && ! "$bin" --quiet export --model "$out/$name" > /dev/null 2>&1; then
          fail "$kind kill $round: $out/$name is not a loadable model (partial file under a final name)"
        fi ;;
      slide)
        if [[ "$name" == *_summary.json ]]; then same_as_ref "$name" "$out/$name" "$ref/$name" slide ||
          fail "$kind kill $round: $out/$name differs from the reference (partial file under a final name)"
        elif ! cmp -s "$out/$name" "$ref/$name"; then
          fail "$kind kill $round: $out/$name differs from the reference (partial file under a final name)"
        fi ;;
      *)
        if [ ! -f "$ref/$name" ]; then fail "$kind kill $round: $out/$name is not an output of the reference run"
        elif [ "$name" = segment_summary.csv ]; then
          # Written every few seconds: the rows so far, each as the reference has it.
          [ -z "$(comm -23 <(summary_rows "$out/$name" | sort) <(summary_rows "$ref/$name" | sort))" ] ||
            fail "$kind kill $round: $out/$name has rows the reference has not (partial file under a final name)"
        elif ! cmp -s "$out/$name" "$ref/$name"; then
          fail "$kind kill $round: $out/$name differs from the reference (partial file under a final name)"
        fi ;;
    esac
  done
}

# After a run completed: every reference output exists in $2 and is byte-identical, nothing more.
compare_final() {
  local kind="$1" out="$2" ref="$3" kills_so_far="$4" name extra
  for name in $(finals "$ref"); do
    # train's last.ckpt is resume state, not a result: LibTorch's optimizer archive keys each
    # parameter's state by its TensorImpl address, so even two uninterrupted runs differ in it.
    # Its content is checked through what it resumes: best.safetensors and log.csv.
    if [ "$kind" = train ] && [ "$name" = last.ckpt ]; then continue; fi
    if [ ! -f "$out/$name" ]; then fail "$kind: $name missing after resume"; differ=1
    elif ! same_as_ref "$name" "$out/$name" "$ref/$name" "$kind"; then
      fail "$kind: $name differs from the uninterrupted run after $kills_so_far kills"; differ=1
    fi
  done
  extra=$(comm -13 <(finals "$ref") <(finals "$out") | tr '\n' ' ')
  [ -z "$extra" ] || fail "$kind: files not in the reference run: $extra"
  # A resumed run removes the temporaries its killed predecessors left (remove_stale_temporaries).
  local left
  left=$(cd "$out" && find . -type f -name '.*tmp-*' | wc -l)
  [ "$left" = 0 ] || fail "$kind: $left temporary file(s) left after the run completed (after $kills_so_far kills)"
  stale=$((stale + left))
}

# Kills until $kills starts were killed (at most 3 x $kills starts): a start that completes ends an
# episode (its outputs are compared) and the next start begins a fresh one, so every kill lands in
# a run that still has work to do.
run_kind() {
  local kind="$1" ref="$work/ref_$kind" out="$work/kill_$kind"
  rm -rf "$ref" "$out"
  local t0 t1 ms
  t0=$(ns)
  if ! $(cmd_$kind "$ref") > "$work/$kind.ref.log" 2>&1; then
    fail "$kind: the reference run failed: $(tail -1 "$work/$kind.ref.log")"
    return
  fi
  t1=$(ns)
  ms=$(( (t1 - t0) / 1000000 ))
  local hit=0 starts=0 episodes=0 pid delay code
  differ=0
  stale=0
  while [ "$hit" -lt "$kills" ] && [ "$starts" -lt $((3 * kills)) ]; do
    starts=$((starts + 1))
    # A moment anywhere in the run (process start included), 1 ms resolution.
    delay=$(( RANDOM % (ms + 50) ))
    $(cmd_$kind "$out") > "$work/$kind.kill.log" 2>&1 &
    pid=$!
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    kill -9 "$pid" 2> /dev/null  # a no-op when it has already ended
    wait "$pid" 2> /dev/null
    code=$?
    if [ "$code" = 137 ]; then
      hit=$((hit + 1))
      check_after_kill "$kind" "$out" "$ref" "$hit"
    elif [ "$code" = 0 ]; then
      compare_final "$kind" "$out" "$ref" "$hit"
      episodes=$((episodes + 1))
      rm -rf "$out"
    else
      fail "$kind: start $starts failed (exit $code): $(tail -1 "$work/$kind.kill.log")"
    fi
  done
  if [ -d "$out" ]; then  # resume the last episode to completion
    if ! $(cmd_$kind "$out") > "$work/$kind.final.log" 2>&1; then
      fail "$kind: the final resume failed: $(tail -1 "$work/$kind.final.log")"
      return
    fi
    compare_final "$kind" "$out" "$ref" "$hit"
    episodes=$((episodes + 1))
  fi
  note "$kind: reference ${ms} ms; $hit kills in $starts starts over $episodes completed runs; outputs $([ $differ = 0 ] && echo identical || echo DIFFER); $stale stale temporaries"
}

IFS=',' read -r -a kinds <<< "$only"
for kind in "${kinds[@]}"; do
  case "$kind" in
    segment|train) run_kind "$kind" ;;
    eval)
      [ -d "$work/flat_segment" ] || "$bin" --quiet segment --model classical --input "$work/in" --out "$work/flat_segment"
      mkdir -p "$work/labels_gt"
      for f in "$work"/labels/*_labels.tif; do b=$(basename "$f" _labels.tif); cp "$f" "$work/labels_gt/$b.tif"; done
      run_kind eval ;;
    slide)
      if [ ! -x "$make_slide" ]; then note "slide: skipped ($make_slide not built)"; continue; fi
      "$make_slide" --tiles "$work/data/images" --size "$slide_size" --mpp 0.5 --out "$work/slide.svs" > /dev/null ||
        { fail "slide: bench_make_slide failed"; continue; }
      run_kind slide ;;
    *) echo "kill9_harness: unknown command kind $kind" >&2; exit 2 ;;
  esac
done
if [ "$failures" -gt 0 ]; then
  echo "kill9_harness: $failures check(s) failed (seed $seed; work folder $work)"
  exit 1
fi
echo "kill9_harness: all checks held (seed $seed, $kills kills per command)"
