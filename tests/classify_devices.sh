#!/bin/sh
# `vlzoo classify --device opencl` gives the CPU's answers: the shipped
# blip2_tiny_shapes classifies the 12 example images over the 12 labels on
# both devices; every image must get the same ranking of labels, with each
# score and similarity within 1e-4 of the CPU's. Skips (77) without an
# OpenCL device.
#
#   classify_devices.sh VLZOO REPO_ROOT
set -eu
vlzoo=$1 root=$2
"$vlzoo" info | grep -q '^backend opencl  opencl:' || { echo "no OpenCL device: skipped"; exit 77; }
labels=$(paste -sd, "$root/zoo-configs/shipped/shapes_labels.txt")
set --
for image in "$root"/zoo-configs/shipped/examples/*.png; do set -- "$@" --image "$image"; done
flat='.image as $i | .results | to_entries[] | [$i, .key, .value.label, .value.score, .value.similarity] | @tsv'
"$vlzoo" classify --model blip2_tiny_shapes "$@" --labels "$labels" --json --device cpu | jq -r "$flat" >cpu.tsv
"$vlzoo" classify --model blip2_tiny_shapes "$@" --labels "$labels" --json --device opencl | jq -r "$flat" >opencl.tsv
[ "$(wc -l <cpu.tsv)" -eq 144 ] || { echo "expected 12 x 12 results on the CPU"; exit 1; }
paste cpu.tsv opencl.tsv | awk -F '\t' '
  function abs(x) { return x < 0 ? -x : x }
  $1 != $6 || $2 != $7 || $3 != $8 { print "ranking differs: " $0; bad++ }
  abs($4 - $9) > 1e-4 || abs($5 - $10) > 1e-4 { print "score differs: " $0; bad++ }
  $2 == 0 { n++; print $1 ": " $3 " (" $4 ")" }
  END { if (n != 12 || NR != 144) bad++; exit bad > 0 }'
echo "12 images: the same answers on cpu and opencl"
