"""Shared pieces of the replay tests: a small sample bag, a model config, accounting checks.

The model is the shipped student when ``ivif_ros/weights/student.safetensors`` exists,
otherwise a seeded randomly initialised student saved to a temp dir (the replay then
checks plumbing, accounting and agreement, not fusion quality).
"""

from __future__ import annotations

from pathlib import Path

WIDTH, HEIGHT, FRAMES = 320, 240, 30


def make_sample(folder: Path, frames: int = FRAMES, storage: str = "mcap") -> Path:
    """An `ivif sample` folder at the test size; returns its bag path."""
    from ivif_ros.bag.sample import SampleOptions, generate_sample

    generate_sample(
        folder,
        SampleOptions(
            frames=frames, width=WIDTH, height=HEIGHT, ir_width=WIDTH, ir_height=HEIGHT * 512 // 480, storage=storage
        ),
        progress=False,
    )
    return folder / "bag"


def make_config(folder: Path) -> Path:
    """A config running the student with ONNX Runtime on one thread, caching under ``folder``."""
    import torch

    from ivif_ros.weights import WEIGHTS_DIR

    folder.mkdir(parents=True, exist_ok=True)
    model = "student"
    if not (WEIGHTS_DIR / "student.safetensors").is_file():
        from ivif_ros.models import build_student
        from ivif_ros.weights import save_model

        torch.manual_seed(0)
        model = str(folder / "student_random")
        save_model(
            build_student(),
            model,
            {"det_classes": ["person", "bicycle", "car"], "training": "none: random initialisation for replay tests"},
        )
    path = folder / "replay_test.yaml"
    path.write_text(
        f"pipeline:\n  model: {model}\nengine:\n  backend: onnxruntime\n  threads: 1\n"
        f"  cache_dir: {folder / 'engine_cache'}\n"
    )
    return path


def check_accounting(counts: dict) -> None:
    """The invariants of ``MessageLedger.counts`` as they appear in summary.json."""
    assert counts["inputs"] == counts["paired_messages"] + counts["dropped_messages"]
    assert counts["paired_messages"] == 2 * counts["pairs"]
    assert counts["pairs"] == counts["fused"] + counts["dropped_pairs"]
    assert counts["dropped_messages"] == sum(counts["message_drops_by_reason"].values())
    assert counts["dropped_pairs"] == sum(counts["pair_drops_by_reason"].values())
    assert counts["inputs"] == sum(t["received"] for t in counts["inputs_by_topic"].values())
    assert counts["unaccounted_messages"] == 0 and counts["unaccounted_pairs"] == 0
