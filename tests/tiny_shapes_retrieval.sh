#!/bin/sh
# Retrieval with the shipped blip2_tiny_shapes, end to end through the
# program: a gallery of 48 images (4 per class) drawn by tests/shapes_gen.c
# (which shares no code with the training generator) is indexed once, then
# each of the 12 labels retrieves its 2 best images from the saved index; at
# least 90% of the 24 picks must show the label's class (the file names say
# which: NNNNN_red_circle.png). Reversed, each of 12 images must rank its
# own label first among the 12 for at least 11 of them.
#
#   tiny_shapes_retrieval.sh VLZOO SHAPES_GEN WORKDIR
set -eu
vlzoo=$1 gen=$2 work=$3
rm -rf "$work"
"$gen" --out "$work" --count 48 --seed 777 >/dev/null
labels=$work/labels.txt
"$vlzoo" retrieve --model blip2_tiny_shapes --images "$work/images" --index "$work/gallery.idx" \
  --text "a red circle" --top-k 1 >/dev/null
good=0
while IFS= read -r label; do
  file_part=$(echo "$label" | sed 's/^a //; s/ /_/')
  hits=$("$vlzoo" retrieve --model blip2_tiny_shapes --index "$work/gallery.idx" --text "$label" \
    --top-k 2 --json | grep -o "_${file_part}\.png" | wc -l)
  echo "$label: $hits of 2"
  good=$((good + hits))
done <"$labels"
echo "text -> image: $good of 24 picks of the right class"

ranked=0
for image in $(ls "$work"/images/*.png | head -n 12); do
  want=$(basename "$image" .png | sed 's/^[0-9]*_//; s/_/ /')
  set --
  while IFS= read -r label; do set -- "$@" --text "$label"; done <"$labels"
  top=$("$vlzoo" retrieve --model blip2_tiny_shapes --image "$image" "$@" --top-k 1 --json |
    sed 's/.*"text":"\([^"]*\)".*/\1/')
  [ "$top" = "a $want" ] && ranked=$((ranked + 1))
done
echo "image -> text: $ranked of 12 images rank their own label first"
[ "$good" -ge 22 ] && [ "$ranked" -ge 11 ]
