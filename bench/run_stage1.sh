#!/bin/sh
# BLIP-2 stage 1, image to 32 query features at ViT-g / 224 px: vlzoo
# (bench_stage1, f32, bf16 and f16) side by side with Hugging Face transformers
# on PyTorch's CPU (bench_stage1_torch.py, f32), with the same thread count,
# image and weights, alternating the programs round after round (vlzoo f32,
# torch, vlzoo bf16, vlzoo f16), one model in memory at a time. Prints the medians over the
# rounds and the ratios the targets are stated in. Builds nothing.
#
#   bench/run_stage1.sh [--rounds N] [--repeat R] [--threads T] [--weights FILE]
#                       [--image PATH] [--ln-vision-eps E] [--jsonl FILE]
#
#   --rounds N   rounds of the four runs (default 3)
#   --repeat R   timed passes in each run after its warm-up (default 3)
#   --threads T  threads of every run (default 2)
#   --weights F  a safetensors file with vlzoo / Hugging Face names at the real sizes
#                (tests/fixtures/make_blip2_parity.py --full DIR writes DIR/model.safetensors);
#                default: random weights written once by bench_stage1 --make-weights into
#                a temporary folder (4.7 GB) that both sides load, removed at the end
#   --image P    default ../shared/assets/images/merlion.png (from the source tree)
#   --ln-vision-eps E  ln_vision eps on both sides (default 1e-5, the zoo config's)
#   --jsonl F    also keep every JSON line the runs printed in F
#
# Environment: BENCH_STAGE1 (the binary; default the newest build*/bench/bench_stage1),
# PYTHON (default python3; it needs torch, transformers and Pillow, else only the
# vlzoo half runs and the report says torch was absent), TMPDIR. Needs jq.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
rounds=3
repeat=3
threads=2
weights=
image=$here/../shared/assets/images/merlion.png
eps=1e-5
jsonl=
while [ $# -gt 0 ]; do
  case $1 in
  --rounds | --repeat | --threads | --weights | --image | --ln-vision-eps | --jsonl)
    [ $# -ge 2 ] || { echo "run_stage1.sh: $1 needs a value" >&2; exit 2; }
    case $1 in
    --rounds) rounds=$2 ;;
    --repeat) repeat=$2 ;;
    --threads) threads=$2 ;;
    --weights) weights=$2 ;;
    --image) image=$2 ;;
    --ln-vision-eps) eps=$2 ;;
    --jsonl) jsonl=$2 ;;
    esac
    shift 2 ;;
  -h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "run_stage1.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

bench=${BENCH_STAGE1:-}
if [ -z "$bench" ]; then
  # shellcheck disable=SC2012 # build directory names are plain
  bench=$(ls -t "$here"/build*/bench/bench_stage1 2>/dev/null | head -n 1 || true)
fi
if [ -z "$bench" ] || [ ! -x "$bench" ]; then
  echo "run_stage1.sh: no bench_stage1 binary; build it first or set BENCH_STAGE1" >&2
  exit 2
fi
command -v jq >/dev/null || { echo "run_stage1.sh: needs jq" >&2; exit 2; }
python=${PYTHON:-python3}

work=$(mktemp -d "${TMPDIR:-/tmp}/vlzoo_run_stage1.XXXXXX")
trap 'rm -rf "$work"' EXIT
out=$work/runs.jsonl
: >"$out"

if [ -z "$weights" ]; then
  echo "run_stage1.sh: writing random weights once for both sides" >&2
  "$bench" --make-weights "$work/random.safetensors" >>"$out"
  weights=$work/random.safetensors
fi

torch_note=
if ! torch_note=$("$python" -c 'import torch, transformers, PIL; print("torch", torch.__version__, "transformers", transformers.__version__)' 2>&1); then
  torch_note="absent ($python cannot import torch, transformers and PIL: $(printf '%s' "$torch_note" | tail -n 1))"
  have_torch=0
else
  have_torch=1
fi

i=1
while [ "$i" -le "$rounds" ]; do
  echo "round $i/$rounds: vlzoo f32" >&2
  "$bench" --weights "$weights" --dtype f32 --threads "$threads" --image "$image" \
    --repeat "$repeat" --set "ln_vision_eps=$eps" --save "$work/f32.safetensors" --profile >>"$out"
  if [ "$have_torch" = 1 ]; then
    echo "round $i/$rounds: torch f32" >&2
    "$python" "$here/bench/bench_stage1_torch.py" --weights "$weights" --threads "$threads" \
      --image "$image" --repeat "$repeat" --ln-vision-eps "$eps" \
      --reference "$work/f32.safetensors" >>"$out"
  fi
  echo "round $i/$rounds: vlzoo bf16" >&2
  "$bench" --weights "$weights" --dtype bf16 --threads "$threads" --image "$image" \
    --repeat "$repeat" --set "ln_vision_eps=$eps" --reference "$work/f32.safetensors" \
    --profile >>"$out"
  echo "round $i/$rounds: vlzoo f16" >&2
  "$bench" --weights "$weights" --dtype f16 --threads "$threads" --image "$image" \
    --repeat "$repeat" --set "ln_vision_eps=$eps" --reference "$work/f32.safetensors" >>"$out"
  i=$((i + 1))
done
[ -z "$jsonl" ] || cp "$out" "$jsonl"

jq -s -r --arg torch "$torch_note" --arg weights "$weights" '
  def median: sort | if length == 0 then null
    elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def f($d): if . == null then "n/a" else (. * pow(10; $d) | round / pow(10; $d) | tostring) end;
  def med($rows; $k): [$rows[] | .[$k] | select(. != null)] | median;
  def ratio($a; $b): if $a == null or $b == null then null else $a / $b end;
  def verdict($ok): if $ok == null then "n/a" elif $ok then "MET" else "NOT MET" end;
  def ge($x; $t): if $x == null then null else $x >= $t end;
  def le($x; $t): if $x == null then null else $x <= $t end;
  [.[] | select(.bench == "stage1" and .dtype == "f32")] as $f32 |
  [.[] | select(.bench == "stage1" and .dtype == "bf16")] as $bf16 |
  [.[] | select(.bench == "stage1" and .dtype == "f16")] as $f16 |
  [.[] | select(.bench == "stage1_torch")] as $pt |
  [.[] | select(.bench == "stage1_vit_block_profile")] as $prof |
  def stage($k): {f32: med($f32; $k), bf16: med($bf16; $k), f16: med($f16; $k), torch: med($pt; $k)};
  stage("preprocess_ms") as $pre | stage("vit_ms") as $vit | stage("qformer_ms") as $qf |
  stage("end_to_end_ms") as $e2e |
  ([$bf16[] | .vs_reference.image_features_query_cosine_min] | min) as $bf16cos |
  ([$bf16[] | .vs_reference.image_embeds_cosine] | min) as $bf16embcos |
  ([$f16[] | .vs_reference.image_features_query_cosine_min] | min) as $f16cos |
  ([$f16[] | .vs_reference.image_embeds_cosine] | min) as $f16embcos |
  ([$pt[] | .vs_reference.image_features_query_cosine_min] | min) as $ptcos |
  def profile($d): [$prof[] | select(.dtype == $d)] as $p |
    if ($p | length) == 0 then "n/a" else
    "linear layers (GEMM with fused bias, GELU, residual) \([$p[] | .group_ms.matmul] | median | f(1)) ms, attention \([$p[] | .group_ms.attention] | median | f(2)) ms, layer norms \([$p[] | .group_ms.norm_gelu_bias_residual] | median | f(2)) ms, merging the heads \([$p[] | .group_ms.merging_heads] | median | f(2)) ms; block \([$p[] | .block_ms] | median | f(1)) ms x 39 = \([$p[] | .x_layers_ms] | median | f(0)) ms; as separate ops: matmul \([$p[] | .unfused_group_ms.matmul // empty] | median | f(1)) ms, norm+gelu+bias+residual \([$p[] | .unfused_group_ms.norm_gelu_bias_residual // empty] | median | f(2)) ms, block \([$p[] | .unfused_block_ms // empty] | median | f(1)) ms" end;
  "BLIP-2 stage 1, ViT-g 224 px -> 32 query features; \($f32 | length) vlzoo f32, \($bf16 | length) vlzoo bf16, \($f16 | length) vlzoo f16, \($pt | length) torch runs (medians over runs of each run'"'"'s median)",
  "threads \($f32[0].threads // "?"), image \($f32[0].image // "?"), weights \($weights), ln_vision eps \($f32[0].ln_vision_eps // "?" | f(7))",
  "torch: \($torch)" + (if ($pt | length) > 0 then " (\($pt[0].attn_implementation) attention, \($pt[0].torch_blas), \($pt[0].image_processor))" else "" end),
  "",
  def col($w): . + " " * ($w - length);
  "stage ms          vlzoo f32   vlzoo bf16   vlzoo f16   torch f32   torch/f32   torch/bf16   torch/f16",
  ( ["preprocess", $pre], ["vit", $vit], ["qformer", $qf], ["end to end", $e2e] | . as [$n, $s] |
    "\($n | col(16))  \($s.f32 | f(1) | col(10))  \($s.bf16 | f(1) | col(11))  \($s.f16 | f(1) | col(10))  \($s.torch | f(1) | col(10))  \(ratio($s.torch; $s.f32) | f(3) | col(10))  \(ratio($s.torch; $s.bf16) | f(3) | col(11))  \(ratio($s.torch; $s.f16) | f(3))" ),
  ( ["vit", "vit_ms_all"], ["end to end", "end_to_end_ms_all"] | . as [$n, $k] |
    ([$f32[] | .[$k][]?] | min) as $a | ([$bf16[] | .[$k][]?] | min) as $b | ([$f16[] | .[$k][]?] | min) as $h | ([$pt[] | .[$k][]?] | min) as $c |
    "\($n + " fastest" | col(16))  \($a | f(1) | col(10))  \($b | f(1) | col(11))  \($h | f(1) | col(10))  \($c | f(1) | col(10))  \(ratio($c; $a) | f(3) | col(10))  \(ratio($c; $b) | f(3) | col(11))  \(ratio($c; $h) | f(3))" ),
  "",
  "ViT GFLOP/s: vlzoo f32 \(med($f32; "vit_gflops") | f(1)), bf16 \(med($bf16; "vit_gflops") | f(1)) (\($bf16[0].gemm_kernel // "?")), f16 \(med($f16; "vit_gflops") | f(1)) (\($f16[0].gemm_kernel // "?")), torch \(med($pt; "vit_gflops") | f(1)) (\($f32[0].vit_gflop // 0 | f(1)) GFLOP)",
  "GEMM GFLOP/s (ViT-layer mix of 257x1408x1408, 257x6144x1408, 257x1408x6144): vlzoo f32 \(med($f32; "gemm_gflops") | f(1)), vlzoo bf16 \(med($bf16; "gemm_gflops") | f(1)), vlzoo f16 \(med($f16; "gemm_gflops") | f(1)), torch F.linear \(med($pt; "gemm_gflops") | f(1))",
  "ViT GFLOP/s / own GEMM GFLOP/s: vlzoo f32 \(med($f32; "vit_vs_gemm") | f(3)), vlzoo bf16 \(med($bf16; "vit_vs_gemm") | f(3)), vlzoo f16 \(med($f16; "vit_vs_gemm") | f(3)), torch \(med($pt; "vit_vs_gemm") | f(3))",
  "bf16 vs f32 (vlzoo): query-feature cosine min over queries and runs \($bf16cos | f(6)), image-embeds cosine \($bf16embcos | f(6))",
  "f16 vs f32 (vlzoo): query-feature cosine min over queries and runs \($f16cos | f(6)), image-embeds cosine \($f16embcos | f(6)); peak RSS / weight bytes \(med($f16; "peak_rss_over_weights") | f(3))",
  "torch vs vlzoo f32: query-feature cosine min \($ptcos | f(9))",
  "peak RSS / weight bytes: vlzoo f32 \(med($f32; "peak_rss_over_weights") | f(3)) (after loading \(med($f32; "inference_peak_over_weights") | f(3)), without the GEMM operands \(med($f32; "inference_peak_over_weights_without_gemm_operands") | f(3))), bf16 \(med($bf16; "peak_rss_over_weights") | f(3)) (after loading \(med($bf16; "inference_peak_over_weights") | f(3)), without the GEMM operands \(med($bf16; "inference_peak_over_weights_without_gemm_operands") | f(3))), torch \(med($pt; "peak_rss_over_weights") | f(3)) (after loading \(med($pt; "inference_peak_over_weights") | f(3)); its weights stay in the mapped file, and the interpreter and libraries hold \((med($pt; "rss_start") // 0) / 1e9 | f(2)) GB)",
  "weight bytes: vlzoo f32 \((med($f32; "weights_bytes") // 0) / 1e9 | f(3)) GB, bf16 \((med($bf16; "weights_bytes") // 0) / 1e9 | f(3)) GB, torch \((med($pt; "weights_bytes") // 0) / 1e9 | f(3)) GB; load ms vlzoo f32 \(med($f32; "load_ms") | f(0)), bf16 \(med($bf16; "load_ms") | f(0)), torch \(med($pt; "load_ms") | f(0)); load + first pass (preprocess, ViT, Q-Former; mapped weights are paged in then) ms vlzoo f32 \(med($f32; "load_ms") + med($f32; "first_pass_ms") | f(0)), bf16 \(med($bf16; "load_ms") + med($bf16; "first_pass_ms") | f(0)), torch \(med($pt; "load_ms") + med($pt; "first_pass_ms") | f(0))",
  "one ViT block op by op, f32: \(profile("f32"))",
  "one ViT block op by op, bf16: \(profile("bf16"))",
  "",
  "targets:",
  "  f32 >= 1.2x torch f32 end to end: \(ratio($e2e.torch; $e2e.f32) | f(3)) \(verdict(ge(ratio($e2e.torch; $e2e.f32); 1.2))) (ViT \(ratio($vit.torch; $vit.f32) | f(3)))",
  "  f32 ViT >= 0.9 x vlzoo GEMM rate: \(med($f32; "vit_vs_gemm") | f(3)) \(verdict(ge(med($f32; "vit_vs_gemm"); 0.9)))",
  "  bf16 >= 2x torch f32 end to end: \(ratio($e2e.torch; $e2e.bf16) | f(3)) \(verdict(ge(ratio($e2e.torch; $e2e.bf16); 2.0))) (ViT \(ratio($vit.torch; $vit.bf16) | f(3)))",
  "  bf16 query-feature cosine vs f32 >= 0.999: \($bf16cos | f(6)) \(verdict(ge($bf16cos; 0.999)))",
  "  (f16 weights, the other 16-bit mode: \(ratio($e2e.torch; $e2e.f16) | f(3))x torch f32 end to end, ViT \(ratio($vit.torch; $vit.f16) | f(3))x; cosine vs f32 \($f16cos | f(6)))",
  "  peak memory <= 1.1x weights, whole run (loading included): f32 \(med($f32; "peak_rss_over_weights") | f(3)) \(verdict(le(med($f32; "peak_rss_over_weights"); 1.1))), bf16 \(med($bf16; "peak_rss_over_weights") | f(3)) \(verdict(le(med($bf16; "peak_rss_over_weights"); 1.1)))",
  "  peak memory <= 1.1x weights, after loading: f32 \(med($f32; "inference_peak_over_weights") | f(3)) \(verdict(le(med($f32; "inference_peak_over_weights"); 1.1))), bf16 \(med($bf16; "inference_peak_over_weights") | f(3)) \(verdict(le(med($bf16; "inference_peak_over_weights"); 1.1)))"
' "$out"
