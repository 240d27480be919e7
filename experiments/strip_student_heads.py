"""Remove the CenterNet detection heads from student weights trained before the student lost them.

    python experiments/strip_student_heads.py ivif_ros/weights/student.safetensors experiments/weights/*.safetensors

Students trained with detection heads carry ``heads.heat.*`` and ``heads.box.*`` tensors
and a shared ``heads.trunk`` before their semantic head. The student now has only the semantic
head, ``seg_head = (SeparableConv, 1x1 conv)``, which is that trunk and ``heads.seg`` under new
names. This drops the detection tensors, renames the rest, removes ``num_det`` and
``detection_classes`` from the sidecar and writes the new sha256. The fused image and the
semantic logits are unchanged, since the removed tensors fed only the detection outputs.
Files already stripped are left alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RENAMES = (("heads.trunk.", "seg_head.0."), ("heads.seg.", "seg_head.1."))
DROPPED = ("heads.heat.", "heads.box.")


def strip_state(state: dict) -> tuple[dict, dict]:
    """(kept and renamed tensors, dropped tensors) of a student state dict with heads."""
    kept, dropped = {}, {}
    for name, tensor in state.items():
        if name.startswith(DROPPED):
            dropped[name] = tensor
            continue
        for old, new in RENAMES:
            if name.startswith(old):
                name = new + name[len(old) :]
        kept[name] = tensor
    return kept, dropped


def strip_file(weights: Path) -> str:
    from safetensors.torch import load_file, save_file

    from ivif_ros.core.hashing import file_sha256

    sidecar = weights.with_suffix(".json")
    state = load_file(str(weights))
    if not any(k.startswith("heads.") for k in state):
        return f"{weights}: no heads, left alone"
    before = weights.stat().st_size
    kept, dropped = strip_state(state)
    save_file({k: v.contiguous() for k, v in kept.items()}, str(weights))
    meta = json.loads(sidecar.read_text())
    meta["config"].pop("num_det", None)
    meta.pop("detection_classes", None)
    meta["sha256"] = file_sha256(weights)
    sidecar.write_text(json.dumps(meta, indent=2) + "\n")
    n_values = sum(t.numel() for t in dropped.values())
    return (
        f"{weights}: dropped {len(dropped)} tensors ({n_values} values), kept {len(kept)}; "
        f"{before} -> {weights.stat().st_size} bytes"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", nargs="+", type=Path, help="student .safetensors files (rewritten in place)")
    args = ap.parse_args()
    for w in args.weights:
        print(strip_file(w))
    return 0


if __name__ == "__main__":
    sys.exit(main())
