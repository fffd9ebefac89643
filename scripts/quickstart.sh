#!/usr/bin/env bash
# The README's first command: install what is missing, build (Release) and
# run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build
./build/vlzoo info
./build/vlzoo bench gemm --m 257 --n 1408 --k 1408 --repeat 5
