"""Every recipe config loads, reads in one file plus at most one base, and differs from the
shipped recipe only where its name says; the shipped recipe is the product's training config
with the recipe-selection hold-out left out."""

from pathlib import Path

import pytest
import yaml

from ivif_ros.training.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRODUCT = Path(__file__).resolve().parents[2] / "config" / "train_student.yaml"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_recipe_loads_and_its_base_has_no_base(path):
    cfg = load_config(path)
    assert cfg.data, path
    base = yaml.safe_load(path.read_text()).get("base")
    if base:
        assert "base" not in yaml.safe_load((path.parent / base).read_text()), (
            f"{path.name}: base chain deeper than one"
        )


def test_shipped_recipe_is_the_product_config_minus_the_holdout():
    shipped, product = load_config(CONFIGS / "student_shipped.yaml"), load_config(PRODUCT)
    held = shipped.data[0].pop("exclude")
    assert Path(held).name == "msrs_dev_heldout40.txt" and Path(held).is_file()
    assert shipped.to_dict() == product.to_dict()


def test_a_recipe_changes_only_its_own_keys():
    shipped = load_config(CONFIGS / "student_shipped.yaml").to_dict()
    dropout = load_config(CONFIGS / "g_visible_dropout.yaml").to_dict()
    assert {k for k in shipped if shipped[k] != dropout[k]} == {"visible_dropout"}
    metric = load_config(CONFIGS / "o_fusion_context_ssim3.yaml")
    assert metric.loss_weights["ssim_metric"] == 3.0 and metric.loss_weights["qabf"] == 3.0  # merged weight by weight


@pytest.mark.parametrize("held, root", [("tno", "tno"), ("vifb", "other/vifb")])
def test_leave_one_sensor_out_is_the_shipped_recipe_minus_that_sensor(held, root):
    shipped = load_config(CONFIGS / "student_shipped.yaml").to_dict()
    loso = load_config(CONFIGS / f"loso_without_{held}.yaml").to_dict()
    assert loso["data"] == [s for s in shipped["data"] if s["root"] != root]
    assert len(loso["data"]) == len(shipped["data"]) - 1
    assert {k for k in shipped if shipped[k] != loso[k]} == {"data"}
