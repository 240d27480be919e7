"""``ivif demo``: sample generation + live replay + report, as the README runs it (smaller)."""

from replay_support import make_config

from ivif_ros.cli import main


def test_demo_generates_the_sample_and_reports_a_live_replay(ros_env, tmp_path, capsys):
    config = make_config(tmp_path / "model")
    out = tmp_path / "demo"
    code = main(
        ["demo", "--out", str(out), "--frames", "12", "--width", "320", "--height", "240", "--config", str(config)]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert (out / "sample" / "calibration.yaml").is_file() and (out / "sample" / "bag" / "metadata.yaml").is_file()
    report = out / "replay" / "report.md"
    assert f"report: {report}" in printed and "pairs / fused" in printed
    assert "Mode: **live at 1x bag rate**" in report.read_text()
