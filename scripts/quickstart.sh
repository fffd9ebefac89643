#!/usr/bin/env bash
# The README's first command: install what is missing, build (Release) and
# run the main job: zero-shot classification of an example image with the
# shipped blip2_tiny_shapes over the 12 labels of its world.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build
image=${1:-zoo-configs/shipped/examples/blue_triangle.png}
labels=$(paste -sd, zoo-configs/shipped/shapes_labels.txt)
echo "vlzoo classify --model blip2_tiny_shapes --image $image --labels \"$labels\" --top-k 3"
./build/vlzoo classify --model blip2_tiny_shapes --image "$image" --labels "$labels" --top-k 3
