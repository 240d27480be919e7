#!/usr/bin/env bash
# The detector comparison of the model card, end to end: fine-tune the COCO FastestDet with one
# recipe (config/train_detector.yaml) on the fused, IR-only and visible-only images of
# msrs_dev_train (+ the 12 MSRS train pairs), then score all three and the zero-shot COCO
# detector on msrs_dev_eval against labels_det/fusion, with paired bootstrap intervals.
#
#   IVIF_DATA=/path/to/data experiments/detector/run_all.sh [runs folder, default runs/detector]
#
# A finished run is skipped and an interrupted one resumed, so the script can be re-run.
set -euo pipefail
: "${IVIF_DATA:?set IVIF_DATA to the folder holding msrs/ and splits/}"
cd "$(dirname "$0")/../.."
RUNS="${1:-runs/detector}"
IVIF="${IVIF:-.venv/bin/ivif}"
PY="${PYTHON:-.venv/bin/python}"
SEED="${SEED:-0}"

for mode in fused ir visible; do
  out="$RUNS/${mode}_seed$SEED"
  if [[ -f "$out/detector.safetensors" ]]; then continue; fi
  resume=(); [[ -f "$out/checkpoint.pt" ]] && resume=(--resume)
  "$IVIF" train detector --config config/train_detector.yaml --input-mode "$mode" --seed "$SEED" \
    --out "$out" --threads 1 "${resume[@]}"
done

"$PY" experiments/detector/evaluate.py --input-size 480 352 \
  --run "fused=fused:$RUNS/fused_seed$SEED/detector.safetensors" \
  --run "ir=ir:$RUNS/ir_seed$SEED/detector.safetensors" \
  --run "visible=visible:$RUNS/visible_seed$SEED/detector.safetensors" \
  --run "coco_fused=fused:detector_coco" --run "coco_ir=ir:detector_coco" --run "coco_visible=visible:detector_coco" \
  --compare fused,ir --compare fused,visible --compare fused,coco_fused \
  --out "experiments/detector/results/comparison_seed$SEED.json" \
  --plot "experiments/detector/results/comparison_seed$SEED.png" \
  --loss-logs "fused=$RUNS/fused_seed$SEED/losses.csv" "ir=$RUNS/ir_seed$SEED/losses.csv" "visible=$RUNS/visible_seed$SEED/losses.csv"
