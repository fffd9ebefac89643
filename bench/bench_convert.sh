#!/usr/bin/env bash
# Conversion throughput on a ~1 GB PyTorch checkpoint against `cp` of the
# same file, and the time to open a mapped .ckpt, measured in one run.
# vlzoo flushes its output to disk (fsync) before renaming it into place, so
# the like-for-like competitor is `cp` followed by `sync FILE`; plain `cp`,
# which returns while the data is still in the page cache, is shown too.
# Prints one JSON line per measurement (medians of --runs, default 5).
#   bash bench/bench_convert.sh [--vlzoo build/vlzoo] [--python python3] [--runs N] [--dir DIR]
# The input is written once with torch.save (PyTorch is needed for that
# step only); the bench skips with a message when it cannot make it.
set -euo pipefail
vlzoo=build/vlzoo python=python3 runs=5 dir=${TMPDIR:-/tmp}/vlzoo-bench-convert
while [ $# -gt 0 ]; do
  case $1 in
    --vlzoo) vlzoo=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "bench_convert: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$dir"
input=$dir/checkpoint_1gb.pth
if [ ! -s "$input" ]; then
  if ! "$python" -c 'import torch' 2>/dev/null; then
    echo "bench_convert: skipped: $python has no torch to write the input" >&2
    exit 0
  fi
  # 39 ViT-g-sized blocks' worth of f32 matrices, about 1 GB.
  "$python" - "$input" <<'PY'
import sys, torch
g = torch.Generator().manual_seed(0)
sd = {}
for i in range(39):
    sd[f"blocks.{i}.mlp.fc1.weight"] = torch.randn(6144, 1024, generator=g)
    sd[f"blocks.{i}.mlp.fc1.bias"] = torch.randn(6144, generator=g)
torch.save(sd, sys.argv[1])
PY
fi
bytes=$(stat -c %s "$input")

now() { date +%s.%N; }
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
time_cmd() { # runs a command $runs times, prints the median seconds
  for _ in $(seq "$runs"); do
    rm -f "$dir/out"*
    t0=$(now); "$@" >/dev/null; t1=$(now)
    echo "$t1 - $t0" | bc -l
  done | median
}

cat "$input" >/dev/null # same warm page cache for every contender
cp_s=$(time_cmd cp "$input" "$dir/out.copy")
copy_and_sync() { cp "$1" "$2" && sync "$2"; }
cpsync_s=$(time_cmd copy_and_sync "$input" "$dir/out.copy")
ckpt_s=$(time_cmd "$vlzoo" convert --torch_path "$input" --mindspore_path "$dir/out.ckpt")
st_s=$(time_cmd "$vlzoo" convert --torch_path "$input" --safetensors_path "$dir/out.safetensors")
"$vlzoo" convert --torch_path "$input" --mindspore_path "$dir/mapped.ckpt" >/dev/null
open_s=$(time_cmd "$vlzoo" inspect "$dir/mapped.ckpt")
rm -f "$dir/out"* "$dir/mapped.ckpt"

gbps() { echo "$bytes / $1 / 1000000000" | bc -l; }
printf '{"case":"cp","bytes":%s,"median_s":%.3f,"gb_per_s":%.2f}\n' "$bytes" "$cp_s" "$(gbps "$cp_s")"
printf '{"case":"cp_and_sync","bytes":%s,"median_s":%.3f,"gb_per_s":%.2f}\n' "$bytes" "$cpsync_s" \
  "$(gbps "$cpsync_s")"
for c in "convert_pth_to_ckpt $ckpt_s" "convert_pth_to_safetensors $st_s"; do
  set -- $c
  printf '{"case":"%s","bytes":%s,"median_s":%.3f,"gb_per_s":%.2f,"ratio_to_cp_and_sync":%.2f,"ratio_to_cp":%.2f}\n' \
    "$1" "$bytes" "$2" "$(gbps "$2")" "$(echo "$cpsync_s / $2" | bc -l)" "$(echo "$cp_s / $2" | bc -l)"
done
printf '{"case":"open_mapped_ckpt","bytes":%s,"median_s":%.3f}\n' "$bytes" "$open_s"
