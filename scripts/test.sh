#!/usr/bin/env bash
# The README's second command: install what is missing, then build and run
# the whole test suite twice, in Release and under AddressSanitizer +
# UndefinedBehaviorSanitizer. Fails on any failed test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build
(cd build && ctest --output-on-failure -j "$jobs")

cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVLZOO_SANITIZE=ON \
  -DVLZOO_BUILD_BENCH=OFF >/dev/null
cmake --build build-sanitize
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"
(cd build-sanitize && ctest --output-on-failure -j "$jobs")
bash scripts/fuzz.sh "${VLZOO_FUZZ_SECONDS:-30}"
