#!/bin/sh
# Runs an already built bench_gemm 5 times and prints, per shape, the median
# over the runs of each ratio it reports (and of the GFLOP/s behind them),
# the OpenCL backend's (our GEMM kernels and CLBlast's, against the CPU
# backend) included when OpenCL runs here.
# Builds nothing.
#
#   bench/run_gemm.sh [path/to/bench_gemm] [bench_gemm options...]
#
# The binary defaults to $BENCH_GEMM, else the newest build*/bench/bench_gemm
# under the source tree. Needs jq.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_GEMM:-}
if [ $# -gt 0 ] && [ -x "$1" ] && [ ! -d "$1" ]; then
  bench=$1
  shift
fi
if [ -z "$bench" ]; then
  # shellcheck disable=SC2012 # build directory names are plain
  bench=$(ls -t "$here"/build*/bench/bench_gemm 2>/dev/null | head -n 1 || true)
fi
if [ -z "$bench" ] || [ ! -x "$bench" ]; then
  echo "run_gemm.sh: no bench_gemm binary; build it first or pass its path" >&2
  exit 2
fi
command -v jq >/dev/null || { echo "run_gemm.sh: needs jq" >&2; exit 2; }

runs=5
out=$(mktemp)
trap 'rm -f "$out"' EXIT
i=1
while [ $i -le $runs ]; do
  echo "run $i/$runs: $bench $*" >&2
  "$bench" "$@" >>"$out"
  i=$((i + 1))
done

jq -s -r '
  def median: sort | if length == 0 then null
    elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def fmt: if . == null then "n/a" else (. * 1000 | round / 1000 | tostring) end;
  def med($k): map(.[$k]) | map(select(. != null)) | median;
  group_by([.m, .n, .k])[] |
  "\(.[0].m)x\(.[0].n)x\(.[0].k) (\(length) runs, \(.[0].threads) threads, kernels \(.[0].vlzoo_f32_kernel) / \(.[0].vlzoo_bf16_kernel)):" +
  " vlzoo_f32/onednn \(med("vlzoo_f32_vs_onednn") | fmt)" +
  "  vlzoo_f32/openblas \(med("vlzoo_f32_vs_openblas") | fmt)" +
  "  vlzoo_bf16/vlzoo_f32 \(med("vlzoo_bf16_vs_f32") | fmt)" +
  "  | GFLOP/s f32 \(med("vlzoo_f32_gflops") | fmt) bf16 \(med("vlzoo_bf16_gflops") | fmt)" +
  " onednn \(med("onednn_gflops") | fmt) openblas \(med("openblas_gflops") | fmt)" +
  "  | bf16 max err/rms \(med("bf16_max_rel_err") | fmt)" +
  "  | opencl/vlzoo_f32 \(med("opencl_vs_vlzoo_f32") | fmt) clblast/vlzoo_f32 \(med("clblast_vs_vlzoo_f32") | fmt)" +
  " GFLOP/s opencl \(med("opencl_gflops") | fmt) clblast \(med("clblast_gflops") | fmt)"
' "$out"
