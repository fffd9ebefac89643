#!/bin/sh
# The pipelines' speed, through the vlzoo program as users run it:
#   1. zero-shot classification throughput (images/s, 12 labels) of the
#      shipped blip2_tiny_shapes and of blip2_stage1_classification at full
#      size (ViT-g + Q-Former, random weights);
#   2. eval-retrieval of blip2_tiny_shapes on 1000 generated images with 5
#      captions each (5000 texts, k_test 128);
#   3. at full size (blip2_stage1_evaluator, random weights), the time per
#      image of the ITC features and of the ITM re-ranking, from an
#      eval-retrieval run on a few images.
# Each measurement runs --rounds times; the report gives medians. Times
# include loading the model (what a user waits for), and are also given
# without it where the program reports its own stage times.
#
#   bench/run_pipelines.sh [--rounds N] [--threads T] [--weights FILE] [--skip-full]
#
#   --rounds N   runs of each measurement (default 3)
#   --threads T  VLZOO_THREADS (default 2)
#   --weights F  full-size stage-1 weights (safetensors, vlzoo / Hugging Face names);
#                default: random weights written once by bench_stage1 --make-weights
#                into a temporary folder (4.7 GB), removed at the end
#   --skip-full  only the small model
#
# Environment: VLZOO (the program; default the newest build*/vlzoo but build-sanitize), SHAPES_GEN
# (default beside it, tests/vlzoo_shapes_gen), BENCH_STAGE1, TMPDIR. Needs jq and the
# shared bert-base-uncased vocabulary (../shared/assets) for the full-size runs.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
rounds=3
threads=2
weights=
full=1
while [ $# -gt 0 ]; do
  case $1 in
  --rounds | --threads | --weights)
    [ $# -ge 2 ] || { echo "run_pipelines.sh: $1 needs a value" >&2; exit 2; }
    case $1 in
    --rounds) rounds=$2 ;;
    --threads) threads=$2 ;;
    --weights) weights=$2 ;;
    esac
    shift 2 ;;
  --skip-full) full=0; shift ;;
  -h | --help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "run_pipelines.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

# The newest build, but never a sanitizer build (scripts/test.sh makes
# build-sanitize): timing it would measure AddressSanitizer.
newest() { ls -t "$here"/build*/"$1" 2>/dev/null | grep -v /build-sanitize/ | head -n 1 || true; }
vlzoo=${VLZOO:-$(newest vlzoo)}
gen=${SHAPES_GEN:-$(newest tests/vlzoo_shapes_gen)}
bench=${BENCH_STAGE1:-$(newest bench/bench_stage1)}
for tool in "$vlzoo" "$gen"; do
  [ -n "$tool" ] && [ -x "$tool" ] || { echo "run_pipelines.sh: build vlzoo and vlzoo_shapes_gen first" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "run_pipelines.sh: needs jq" >&2; exit 2; }
vocab=$here/../shared/assets/tokenizers/bert-base-uncased-vocab.txt
if [ "$full" = 1 ] && [ ! -r "$vocab" ]; then
  echo "run_pipelines.sh: no $vocab; running the small model only" >&2
  full=0
fi
export VLZOO_THREADS=$threads

work=$(mktemp -d "${TMPDIR:-/tmp}/vlzoo_run_pipelines.XXXXXX")
trap 'rm -rf "$work"' EXIT
out=$work/runs.jsonl
: >"$out"

now() { date +%s.%N; }
labels=$(tr '\n' ',' <"$here/zoo-configs/shipped/shapes_labels.txt" 2>/dev/null | sed 's/,$//')
[ -n "$labels" ] || labels="a red circle,a red square,a red triangle,a green circle,a green square,a green triangle,a blue circle,a blue square,a blue triangle,a yellow circle,a yellow square,a yellow triangle"

# One classification run: N images, wall time, one JSON line.
classify() { # name model n images...
  name=$1 model=$2 n=$3
  shift 3
  t0=$(now)
  "$vlzoo" classify --model "$model" "$@" --labels "$labels" --json >"$work/classify.out"
  t1=$(now)
  [ "$(wc -l <"$work/classify.out")" -eq "$n" ] || { echo "run_pipelines.sh: classify printed the wrong number of lines" >&2; exit 1; }
  jq -n -c --arg name "$name" --argjson n "$n" --argjson s "$(echo "$t1 - $t0" | bc -l)" \
    '{bench: "classify", model: $name, images: $n, seconds: $s, images_per_s: ($n / $s)}' >>"$out"
}

# Retrieval data: 5 captions per image, as in COCO / Flickr30k.
"$gen" --out "$work/shapes" --count 1000 --seed 2026 >/dev/null
jq '[.[] | .caption[0] as $c | .caption = [$c, "a picture of \($c).", "a photo of \($c)",
     "an image showing \($c)", "\($c) on a light background"]]' \
  "$work/shapes/annotations.json" >"$work/shapes/annotations5.json"
images=$(jq -r '.[0:64][] | .image' "$work/shapes/annotations.json" | sed "s|^|--image $work/shapes/|")

tiny_rounds=$rounds
if [ ! -r "$here/zoo-configs/shipped/blip2_tiny_shapes.ckpt" ]; then
  echo "run_pipelines.sh: blip2_tiny_shapes is not shipped in this tree; full size only" >&2
  tiny_rounds=0
fi
i=1
while [ "$i" -le "$tiny_rounds" ]; do
  echo "round $i/$rounds: blip2_tiny_shapes classify (64 images)" >&2
  # shellcheck disable=SC2086 # word splitting of the --image list is wanted
  classify blip2_tiny_shapes blip2_tiny_shapes 64 $images --batch-size 16
  echo "round $i/$rounds: blip2_tiny_shapes eval-retrieval (1000 images, 5000 texts)" >&2
  t0=$(now)
  "$vlzoo" eval-retrieval --model blip2_tiny_shapes --annotations "$work/shapes/annotations5.json" \
    --image-root "$work/shapes" --k-test 128 --batch-size 16 --json >"$work/eval.json"
  t1=$(now)
  jq -c --argjson s "$(echo "$t1 - $t0" | bc -l)" \
    '{bench: "eval_retrieval", model: "blip2_tiny_shapes", wall_s: $s} + .' "$work/eval.json" >>"$out"
  i=$((i + 1))
done

if [ "$full" = 1 ]; then
  if [ -z "$weights" ]; then
    [ -n "$bench" ] && [ -x "$bench" ] || { echo "run_pipelines.sh: no bench_stage1 to write random weights" >&2; exit 2; }
    echo "run_pipelines.sh: writing random full-size weights" >&2
    "$bench" --make-weights "$work/random.safetensors" >/dev/null
    weights=$work/random.safetensors
  fi
  full_images=$(jq -r '.[0:8][] | .image' "$work/shapes/annotations.json" | sed "s|^|--image $work/shapes/|")
  jq '.[0:8]' "$work/shapes/annotations5.json" >"$work/shapes/full8.json"
  i=1
  while [ "$i" -le "$rounds" ]; do
    echo "round $i/$rounds: blip2_stage1_classification classify (8 images)" >&2
    # shellcheck disable=SC2086
    classify blip2_stage1_classification blip2_stage1_classification 8 $full_images \
      --weights "$weights" --tokenizer "$vocab"
    echo "round $i/$rounds: blip2_stage1_evaluator eval-retrieval (8 images, 40 texts)" >&2
    "$vlzoo" eval-retrieval --model blip2_stage1_evaluator --weights "$weights" --tokenizer "$vocab" \
      --annotations "$work/shapes/full8.json" --image-root "$work/shapes" --k-test 40 --json |
      jq -c '{bench: "eval_retrieval", model: "blip2_stage1_evaluator"} + .' >>"$out"
    i=$((i + 1))
  done
fi

jq -s -r '
  def median: sort | if length == 0 then null
    elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def f($d): if . == null then "n/a" else (. * pow(10; $d) | round / pow(10; $d) | tostring) end;
  [.[] | select(.bench == "classify")] as $c |
  [.[] | select(.bench == "eval_retrieval")] as $e |
  def cls($m): [$c[] | select(.model == $m)];
  def ev($m): [$e[] | select(.model == $m)];
  "zero-shot classification, 12 labels (medians of \(cls("blip2_tiny_shapes") | length) runs; wall time with model loading)",
  ( "blip2_tiny_shapes", "blip2_stage1_classification" | . as $m | cls($m) as $r | select(($r | length) > 0) |
    "  \($m): \([$r[] | .images_per_s] | median | f(2)) images/s (\($r[0].images) images, \([$r[] | .seconds] | median | f(2)) s)" ),
  ( ev("blip2_tiny_shapes") as $r | select(($r | length) > 0) |
    "eval-retrieval blip2_tiny_shapes, \($r[0].images) images / \($r[0].texts) texts, k_test 128:",
    "  wall \([$r[] | .wall_s] | median | f(2)) s = texts \([$r[] | .seconds_texts] | median | f(2)) s + images \([$r[] | .seconds_images] | median | f(2)) s + ITM \([$r[] | .seconds_itm] | median | f(2)) s (+ loading)",
    "  TR@1 \($r[0].txt_r1 | f(2)), IR@1 \($r[0].img_r1 | f(2)) (5 captions per image; many images share a caption, so recall is bounded)" ),
  ( ev("blip2_stage1_evaluator") as $r | select(($r | length) > 0) |
    ($r[0].images) as $ni | ($r[0].texts) as $nt |
    "full size (ViT-g + Q-Former, random weights), \($ni) images / \($nt) texts, every pair re-ranked:",
    "  ITC image features: \([$r[] | .seconds_images / $ni] | median | f(2)) s per image; text features \([$r[] | .seconds_texts / $nt * 1000] | median | f(1)) ms per text",
    "  ITM re-ranking: \([$r[] | .seconds_itm / ($ni * $nt) * 1000] | median | f(1)) ms per image-text pair, so \([$r[] | .seconds_itm / ($ni * $nt) * 128] | median | f(2)) s per image at k_test 128 (one direction)" )
' "$out"
