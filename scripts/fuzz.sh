#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a fixed time
# (first argument, seconds; default 30) from its committed seed corpus. A
# crash, leak or sanitizer report fails the script. New inputs go to a
# scratch folder; the committed corpus is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVLZOO_FUZZ=ON \
  -DVLZOO_BUILD_TESTS=OFF -DVLZOO_BUILD_BENCH=OFF >/dev/null
targets=(pickle zip safetensors ckpt)
cmake --build build-fuzz --target "${targets[@]/#/fuzz_}"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  dict=()
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  echo "fuzz: $t for ${seconds}s"
  if ! ./build-fuzz/fuzz_$t -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$scratch/" "${dict[@]}" "$scratch/$t" "tests/fuzz/corpus/$t" \
    >"$scratch/$t.log" 2>&1; then
    tail -n 40 "$scratch/$t.log" >&2
    echo "fuzz: $t found a failure; the input is in $scratch" >&2
    trap - EXIT
    exit 1
  fi
  grep -E '^stat::number_of_executed_units' "$scratch/$t.log" || true
done
echo "fuzz: no failures"
