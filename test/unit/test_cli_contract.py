"""One error contract for every ``ivif`` subcommand: bad input gives exit code 2 and one line on
stderr naming the file or flag, what is wrong and the fix; never a traceback.

Each subcommand is run (through ``ivif_ros.cli.main``, in this process: an exception escaping
it fails the test) against each class of bad input that applies to it. The read-only-file-system
cases run the real command in a private mount namespace (``unshare``) over a read-only tmpfs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

from replay_support import make_sample
from ros_harness import REPO_ROOT
from test_training import tiny_data, write_config  # noqa: F401  (fixture)

from ivif_ros.cli import main

pytestmark = pytest.mark.reliability

FOLDER_OUT = ["replay", "sample", "eval", "train", "make-bag", "bench", "demo"]
BOMB_LEVELS = 9  # 10 ** 9 strings once expanded


def alias_bomb() -> str:
    """A parameters file whose sync.slop_s is a list that expands to 10**9 strings."""
    levels = "[&l0 [x, x, x, x, x, x, x, x, x, x]"
    for i in range(1, BOMB_LEVELS):
        levels += f", &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]"
    return f"/**:\n  ros__parameters:\n    sync:\n      slop_s: {levels}]\n"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_data):  # noqa: F811
    root = tmp_path_factory.mktemp("bad_inputs")
    bag = make_sample(root / "sample", frames=6)
    hostile_calibration = root / "hostile_sample"
    shutil.copytree(bag, hostile_calibration / "bag")
    (hostile_calibration / "calibration.yaml").write_text(
        "homography: !!python/object/apply:os.system ['touch " + str(root / "EXECUTED") + "']\n"
    )
    (root / "latin1.yaml").write_bytes(
        "/**:\n  ros__parameters:\n    sync: {slop_s: 0.02}  # d\xe9j\xe0\n".encode("latin-1")
    )
    (root / "bomb.yaml").write_text(alias_bomb())
    (root / "python_tag.yaml").write_text(
        "/**:\n  ros__parameters:\n    sync:\n      slop_s: "
        "!!python/object/apply:os.system ['touch " + str(root / "EXECUTED") + "']\n"
    )
    (root / "a_file").write_text("not a folder\n")
    (root / "existing.onnx").write_bytes(b"an earlier export")
    train_dir = root / "train"
    train_dir.mkdir()
    train_cfg = write_config(train_dir, tiny_data)
    return {
        "root": root,
        "bag": bag,
        "hostile_bag": hostile_calibration / "bag",
        "train_cfg": train_cfg,
        "data": tiny_data,
    }


def command(name: str, out: str, inp: dict, config: str | None = None) -> list[str]:
    """``name``'s argv with ``out`` as --out and (if given) ``config`` as its config file."""
    cfg = ["--config", config] if config else []
    return {
        "replay": ["replay", str(inp["bag"]), "--out", out, *cfg],
        "sample": ["sample", "--out", out, "--frames", "2"],
        "eval": ["eval", "--data", str(inp["data"]), "--method", "max", "--out", out],
        "train": ["train", "student", "--no-distill", "--config", config or str(inp["train_cfg"]), "--out", out],
        "make-bag": ["make-bag", "--data", str(inp["data"]), "--out", out],
        "bench": ["bench", "--out", out, "--runs", "1"],
        "demo": ["demo", "--out", out],
        "export": ["export", "--backend", "onnx", "--out", out],
        "launch": ["launch", "--dry-run", *cfg],
    }[name]


def run_cli(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def check_one_line(code: int, output: str, fragments: list[str]) -> None:
    assert "Traceback" not in output, output
    assert code == 2, f"exit {code}:\n{output[-3000:]}"
    errors = [line for line in output.splitlines() if line.startswith("ivif ") and ": error: " in line]
    assert len(errors) == 1, output[-3000:]
    assert len(errors[0]) < 1000, errors[0][:1000]
    for fragment in fragments:
        assert fragment in errors[0], f"{fragment!r} not in {errors[0]!r}"


CASES = (
    [(f"{name}: --out is a file", name, "a_file", None, ["--out", "a_file", "not a folder"]) for name in FOLDER_OUT]
    + [(f"{name}: --out /", name, "/", None, ["--out /", "refusing"]) for name in FOLDER_OUT + ["export"]]
    + [
        ("export: --out exists", "export", "existing.onnx", None, ["existing.onnx", "--force"]),
        ("export: --out is a folder", "export", ".", None, ["is a folder"]),
    ]
    + [
        (f"{name}: {what} config", name, "out_" + name, cfg, [cfg, why])
        for name in ("replay", "launch", "train")
        for what, cfg, why in (
            ("non-UTF-8", "latin1.yaml", "not UTF-8"),
            ("alias bomb", "bomb.yaml", "aliases"),
            ("!!python", "python_tag.yaml", "no !!python"),
        )
    ]
)


@pytest.mark.parametrize("case, name, out, config, fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_and_exit_2(inputs, tmp_path, capsys, monkeypatch, case, name, out, config, fragments):
    monkeypatch.chdir(inputs["root"])
    out_arg = out if out in ("/", "a_file", "existing.onnx", ".") else str(tmp_path / out)
    config_arg = str(inputs["root"] / config) if config else None
    code, output = run_cli(command(name, out_arg, inputs, config_arg), capsys)
    check_one_line(code, output, fragments)
    assert not (inputs["root"] / "EXECUTED").exists()
    assert (inputs["root"] / "existing.onnx").read_bytes() == b"an earlier export"


def test_python_tag_in_a_calibration_beside_the_bag(inputs, tmp_path, capsys):
    code, output = run_cli(["replay", str(inputs["hostile_bag"]), "--out", str(tmp_path / "r")], capsys)
    check_one_line(code, output, ["calibration.yaml", "no !!python"])
    assert not (inputs["root"] / "EXECUTED").exists()


@pytest.mark.parametrize(
    "param, fragments",
    [("use_sim_time=1", ["use_sim_time", "true or false"]), ("foo=1", ["--param foo", "no such parameter"])],
)
def test_launch_refuses_parameters_no_node_takes(capsys, param, fragments):
    code, output = run_cli(["launch", "--dry-run", "--param", param], capsys)
    check_one_line(code, output, fragments)


@pytest.mark.parametrize("checkpoint", ["empty", "wrong_shapes"])
def test_train_resume_with_an_unusable_checkpoint(inputs, tmp_path, capsys, checkpoint):
    out = tmp_path / "run"
    out.mkdir()
    if checkpoint == "empty":
        (out / "checkpoint.pt").write_bytes(b"")
    else:  # another model's state
        layer = torch.nn.Linear(3, 2)
        opt = torch.optim.SGD(layer.parameters(), lr=0.1)
        torch.save(
            {
                "model": layer.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": {},
                "step": 2,
                "torch_rng": torch.get_rng_state(),
            },
            out / "checkpoint.pt",
        )
    code, output = run_cli(
        ["train", "student", "--no-distill", "--config", str(inputs["train_cfg"]), "--out", str(out), "--resume"],
        capsys,
    )
    check_one_line(code, output, ["--resume", "checkpoint.pt"])


def test_alias_bomb_costs_neither_memory_nor_output(inputs):
    """Refused while parsing: no expanded value is built or printed (10**9 strings would be GBs)."""
    # VmHWM: this process image's peak RSS (ru_maxrss would carry over the forking pytest's)
    script = (
        "import sys; from ivif_ros.cli import main; code = main(sys.argv[1:]); "
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
        "print('maxrss_kb', hwm); sys.exit(code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, "launch", "--dry-run", "--config", str(inputs["root"] / "bomb.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert proc.returncode == 2 and len(proc.stderr) < 1000, proc.stderr[:2000]
    maxrss_mb = int(proc.stdout.split("maxrss_kb")[1]) / 1024
    assert maxrss_mb < 300, f"peak RSS {maxrss_mb:.0f} MB while refusing the alias bomb"


def _read_only_mounts_work() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        [
            "unshare",
            "--mount",
            "--map-root-user",
            "sh",
            "-c",
            "mount -t tmpfs -o ro,size=1m none /tmp && ! touch /tmp/x",
        ],
        capture_output=True,
    )
    return probe.returncode == 0


READ_ONLY = ["replay", "sample", "export", "eval", "train"]


@pytest.mark.skipif(not _read_only_mounts_work(), reason="needs unshare --mount --map-root-user (user namespaces)")
@pytest.mark.parametrize("name", READ_ONLY)
def test_out_on_a_read_only_file_system(inputs, tmp_path, name):
    """The real command, with --out under a read-only tmpfs mounted in a private namespace."""
    mount = tmp_path / "ro"
    mount.mkdir()
    out = mount / ("model.onnx" if name == "export" else "run")
    argv = command(name, str(out), inputs)
    inner = f"mount -t tmpfs -o ro,size=1m none {mount} && exec {sys.executable} -m ivif_ros.cli " + " ".join(
        f"'{a}'" for a in argv
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c", inner],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    check_one_line(proc.returncode, proc.stderr + proc.stdout, [str(out), "read-only file system"])


def test_export_overwrites_only_with_force(inputs, tmp_path, capsys):
    target = tmp_path / "student.onnx"
    target.write_bytes(b"keep me")
    code, output = run_cli(["export", "--backend", "onnx", "--out", str(target)], capsys)
    check_one_line(code, output, ["--force"])
    assert target.read_bytes() == b"keep me"
    assert (
        main(["export", "--backend", "onnx", "--out", str(target), "--force", "--width", "64", "--height", "64"]) == 0
    )
    assert target.read_bytes() != b"keep me"
    json.dumps(str(target))  # the path survives as text
