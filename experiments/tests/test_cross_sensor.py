"""experiments/cross_sensor.py: which sets a student was trained on, the --heldout check, and
one run end to end on a tiny three-set data folder with a real trained student."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import cross_sensor as cs
from ivif_ros.metrics.dataset_eval import SCORE_NAMES

SHIPPED = cs.DEFAULT_STUDENT


def loso_copy(tmp_path, drop_root: str):
    """The shipped student under another name, its sidecar's training data without ``drop_root``
    (what a student trained with experiments/configs/loso_without_*.yaml records)."""
    folder = tmp_path / f"loso_{drop_root.replace('/', '_')}"
    folder.mkdir()
    shutil.copy(SHIPPED, folder / "student.safetensors")
    meta = json.loads(SHIPPED.with_suffix(".json").read_text())
    data = meta["training"]["config"]["data"]
    meta["training"]["config"]["data"] = [s for s in data if s["root"] != drop_root]
    (folder / "student.json").write_text(json.dumps(meta))
    return folder / "student.safetensors"


def test_the_shipped_student_trained_on_tno_and_vifb_but_not_on_msrs_dev_eval():
    assert cs.sample_status(SHIPPED, None) == {"msrs": False, "tno": True, "vifb": True}


def test_heldout_is_refused_for_weights_trained_on_that_set():
    with pytest.raises(SystemExit, match="loso_without_tno.yaml"):
        cs.sample_status(SHIPPED, "tno")


def test_a_msrs_source_without_a_split_puts_dev_eval_in_sample():
    assert cs.in_training([{"root": "$IVIF_DATA/msrs/test"}], cs.SETS["msrs"])
    assert not cs.in_training([{"root": "msrs/test", "split": "splits/msrs_dev_train.txt"}], cs.SETS["msrs"])
    assert not cs.in_training([{"root": "other/vifb_extra"}], cs.SETS["vifb"])
    assert cs.in_training(None, cs.SETS["tno"]) is None


def _write_pairs(root, names, seed):
    rng = np.random.default_rng(seed)
    for d in ("ir", "vi"):
        (root / d).mkdir(parents=True)
    for name in names:
        texture = cv2.GaussianBlur(rng.normal(0, 1, (64, 96)), (0, 0), 2.0)
        vis = np.clip(110 + 40 * texture / texture.std(), 0, 255).astype(np.uint8)
        ir = np.full((64, 96), 40, np.uint8)
        ir[20:40, 30:50] = 200  # a hot target the visible image does not show
        cv2.imwrite(str(root / "ir" / f"{name}.png"), ir)
        cv2.imwrite(str(root / "vi" / f"{name}.png"), np.stack([vis] * 3, -1))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    _write_pairs(root / "msrs" / "test", ["00001D", "00002N"], 0)
    (root / "splits").mkdir()
    (root / "splits" / "msrs_dev_eval.txt").write_text("00002N\n")
    _write_pairs(root / "tno", ["01"], 1)
    _write_pairs(root / "other" / "vifb", ["a"], 2)
    return root


def test_one_run_writes_a_table_per_set_with_baselines_and_the_student(data, tmp_path, capsys):
    weights = loso_copy(tmp_path, "tno")
    out = tmp_path / "out"
    assert cs.main(["--data", str(data), "--student", str(weights), "--heldout", "tno", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "student: MSRS dev_eval held out; TNO held out; VIFB in its training data" in printed

    results = json.loads((out / "results.json").read_text())
    assert results["heldout"] == "tno" and results["in_sample"]["student"] == {
        "msrs": False,
        "tno": False,
        "vifb": True,
    }
    assert list(results["sets"]) == ["msrs", "tno", "vifb"]
    assert [s["images"] for s in results["sets"].values()] == [1, 1, 1]  # the split picks one MSRS pair
    assert [s["contrast_images"] for s in results["sets"].values()] == [1, 1, 1]
    for entry in results["sets"].values():
        assert list(entry["means"]) == ["pixel-max", "mean", "GFF", "student"]
        for scores in entry["means"].values():
            assert list(scores) == list(SCORE_NAMES)
        assert entry["means"]["mean"]["contrast"] < entry["means"]["pixel-max"]["contrast"]  # averaging flattens
    assert set(results["verdicts"]["student"]["tno"]) == {
        "beats VIF",
        "beats Qabf",
        "beats SSIM",
        "keeps AG",
        "keeps SF",
    }

    text = (out / "results.md").read_text()
    assert text.count("| method | EN |") == 3 and "## TNO (1 pairs, `tno`)" in text
    assert "- student: held out" in text and "- student vs pixel-max: beats VIF" in text
    for key in ("msrs", "tno", "vifb"):
        assert (out / f"{key}_scores.png").stat().st_size > 1000


def test_bad_arguments_are_explained(data, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cs.main(["--data", str(tmp_path), "--student", "--out", str(tmp_path / "o")])
    assert "msrs/test not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cs.main(["--data", str(data), "--sets", "msrs,kaist", "--student"])
    assert "unknown kaist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cs.main(["--data", str(data), "--student", "--heldout", "tno"])
    assert "give --student" in capsys.readouterr().err


def test_students_get_distinct_table_names():
    one = [Path("runs/a/student.safetensors")]
    assert cs.student_labels(one) == {one[0]: "student"}
    two = [Path("runs/loso_tno/student.safetensors"), Path("runs/x/aug.safetensors")]
    assert list(cs.student_labels(two).values()) == ["student (loso_tno)", "student (aug)"]
    clash = [Path("a/run/student.safetensors"), Path("b/run/student.safetensors")]
    assert list(cs.student_labels(clash).values()) == [f"student ({p})" for p in clash]


def test_ssim_split_adds_up_to_the_ssim_of_evaluate(data, tmp_path, capsys):
    import ssim_per_source

    from ivif_ros.metrics.fusion import as_grey, ssim

    out = tmp_path / "split.json"
    assert ssim_per_source.main(["--data", str(data), "--set", "tno", str(SHIPPED), "--out", str(out)]) == 0
    assert "| 01 |" in capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert [r["pair"] for r in rows] == ["01"]
    ir = cv2.imread(str(data / "tno" / "ir" / "01.png"), cv2.IMREAD_GRAYSCALE)
    vis = cv2.imread(str(data / "tno" / "vi" / "01.png"))
    # pixel-max of two grey images; its two terms must sum to the metric's SSIM
    fused = np.maximum(as_grey(ir), as_grey(vis[..., ::-1]))
    assert sum(rows[0]["pixel-max"]) == pytest.approx(ssim(fused, as_grey(ir), as_grey(vis[..., ::-1])), abs=1e-6)
    assert -1 <= rows[0]["sources"] <= 1 and all(-1 <= v <= 1 for v in rows[0]["student"])
