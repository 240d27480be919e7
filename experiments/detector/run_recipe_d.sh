#!/usr/bin/env bash
# Recipe D (semantic coupling), end to end: fine-tune the student with the frozen detector's loss
# (experiments/detector/recipe_d_coupling.yaml), then score the old and the new student on
# msrs_dev_eval: (1) the shipped detector's mAP@0.5 on each one's fused image, with a paired
# bootstrap of the difference; (2) zero-shot COCO FastestDet at 352x352 against pixel max
# (must-show 2); (3) VIF, Qabf, SSIM against pixel max.
#
#   IVIF_DATA=/path/to/data experiments/detector/run_recipe_d.sh [runs folder] [old student]
#
# The old student defaults to the recipe-E student the run starts from (shipped before it). A
# finished training is skipped, an interrupted one resumed. Writes
# experiments/detector/results/recipe_d*.json. Another fine-tune of the student is scored the
# same way with CONFIG=<its yaml> NAME=<results prefix> (the cross-sensor one: README).
set -euo pipefail
: "${IVIF_DATA:?set IVIF_DATA to the folder holding msrs/ and splits/}"
cd "$(dirname "$0")/../.."
RUNS="${1:-runs/recipe_d}"
OLD="${2:-experiments/weights/student_recipe_e.safetensors}"
PY="${PYTHON:-.venv/bin/python}"
CONFIG="${CONFIG:-experiments/detector/recipe_d_coupling.yaml}"
NAME="${NAME:-recipe_d}"
NEW="$RUNS/student.safetensors"
OUT=experiments/detector/results

if [[ ! -f "$NEW" ]]; then
  resume=(); [[ -f "$RUNS/checkpoint.pt" ]] && resume=(--resume)
  "$PY" -m ivif_ros.cli train student --config "$CONFIG" --no-distill \
    --threads 2 --out "$RUNS" "${resume[@]}"
fi

"$PY" experiments/detector/evaluate.py --input-size 480 352 \
  --run "old=fused@$OLD:detector" --run "new=fused@$NEW:detector" --compare new,old \
  --out "$OUT/$NAME.json" --plot "$OUT/$NAME.png"
"$PY" experiments/detector_zero_shot.py --fusions "pixelmax,$OLD,$NEW" --sizes 352x352 \
  --out "$OUT/${NAME}_zero_shot.json"
"$PY" experiments/val40.py --split "$IVIF_DATA/splits/msrs_dev_eval.txt" "$OLD" "$NEW" | tee "$OUT/${NAME}_fusion.jsonl"
