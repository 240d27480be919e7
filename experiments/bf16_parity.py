"""Does bf16 inference keep the fusion metrics? The shipped student on OpenVINO fp32 vs bf16.

Fuses the first ``--pairs`` pairs of msrs_dev_eval at their native 640x480 through
``FusionPipeline`` (the node's path) with each precision and scores VIF, Qabf and SSIM
(cddfuse conventions) of both, plus the largest pixel difference of the fused images.
Writes ``bf16_parity.json`` and prints a markdown table.

    python experiments/bf16_parity.py --pairs 12 --out experiments/results
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

#: The data folder ($IVIF_DATA, else ../shared/data beside the repository).
ROOT = Path(os.environ.get("IVIF_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DATA = ROOT / "msrs" / "test"
SPLIT = ROOT / "splits" / "msrs_dev_eval.txt"


def main() -> None:
    from tqdm import tqdm

    from ivif_ros.core.pipeline import FusionPipeline, PipelineConfig
    from ivif_ros.datasets.paired import read_image
    from ivif_ros.engines import EngineConfig
    from ivif_ros.engines.selection import cpu_has_bf16 as bf16_native
    from ivif_ros.metrics.fusion import as_grey, qabf, ssim, vif

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("experiments/results"))
    args = parser.parse_args()
    names = SPLIT.read_text().split()[: args.pairs]
    pipes = {
        p: FusionPipeline(PipelineConfig(engine=EngineConfig(backend="openvino", precision=p)))
        for p in ("fp32", "bf16")
    }
    rows = []
    for name in tqdm(names, desc="pairs", unit="pair"):
        ir, vis = read_image(DATA / "ir" / f"{name}.png"), read_image(DATA / "vi" / f"{name}.png")
        fused = {p: pipe.process(ir, vis).fused_y for p, pipe in pipes.items()}
        row = {"pair": name, "max_abs_diff": int(np.abs(fused["fp32"].astype(int) - fused["bf16"]).max())}
        a, b = as_grey(ir), as_grey(vis)  # the metrics' own conversion, as ivif eval scores
        for p, f in fused.items():
            f = as_grey(f)
            row.update({f"vif_{p}": vif(f, a, b), f"qabf_{p}": qabf(f, a, b), f"ssim_{p}": ssim(f, a, b)})
        rows.append(row)
    summary = {
        m: {p: float(np.mean([r[f"{m}_{p}"] for r in rows])) for p in ("fp32", "bf16")} for m in ("vif", "qabf", "ssim")
    }
    for m in summary:
        diffs = [r[f"{m}_bf16"] - r[f"{m}_fp32"] for r in rows]
        summary[m]["mean_diff"], summary[m]["max_abs_diff"] = float(np.mean(diffs)), float(np.max(np.abs(diffs)))
    result = {
        "pairs": names,
        "bf16_native": bf16_native(),
        "host_load": os.getloadavg(),
        "summary": summary,
        "fused_max_abs_diff_levels": max(r["max_abs_diff"] for r in rows),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bf16_parity.json").write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"| metric | fp32 | bf16 | mean diff | max abs diff |  ({len(names)} msrs_dev_eval pairs, "
        f"bf16 native: {result['bf16_native']})\n|---|---:|---:|---:|---:|"
    )
    for m, s in summary.items():
        print(f"| {m} | {s['fp32']:.4f} | {s['bf16']:.4f} | {s['mean_diff']:+.4f} | {s['max_abs_diff']:.4f} |")
    print(f"largest fused-pixel difference: {result['fused_max_abs_diff_levels']} grey levels")


if __name__ == "__main__":
    main()
