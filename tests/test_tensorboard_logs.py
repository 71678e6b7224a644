"""`train.tensorboard: true`: Keras' TensorBoard callback writes event files into RUN_DIR/tensorboard/, and
`dlrun runs` prints the `tensorboard --logdir` command for them."""

from __future__ import annotations

import sys

import pytest

from dlrun.runs import tensorboard as tensorboard_logs
from tests.conftest import invoke, run_folders, tiny_config


@pytest.mark.slow
def test_event_files_are_written_and_listed(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard package is not installed (pip install 'dlrun[tensorboard]')")
    root = tmp_path / "runs"
    result = invoke("train", tiny_config(tmp_path / "tiny.yaml", root), "--set", "train.tensorboard=true")
    assert result.exit_code == 0, result.output
    (run,) = run_folders(root)
    for split in ("train", "validation"):
        events = list((run / "tensorboard" / split).glob("events.out.tfevents.*"))
        assert events and all(event.stat().st_size > 0 for event in events), split
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(run / "tensorboard" / "validation"))
    accumulator.Reload()
    assert [event.step for event in accumulator.Tensors("epoch_loss")] == [0, 1]  # both epochs, Keras counts from 0
    listed = invoke("runs", root)
    assert f"{run.name}: TensorBoard logs: tensorboard --logdir {run / 'tensorboard'}" in listed.stdout


def test_off_by_default_and_no_command_without_logs(tmp_path, trained_run):
    assert not (trained_run / "tensorboard").exists()
    assert tensorboard_logs.command(trained_run) is None
    (tmp_path / "tensorboard" / "train").mkdir(parents=True)
    assert tensorboard_logs.command(tmp_path) is None  # a folder without event files
    (tmp_path / "tensorboard" / "train" / "events.out.tfevents.1.host.2.0.v2").write_bytes(b"x")
    assert tensorboard_logs.command(tmp_path) == f"tensorboard --logdir {tmp_path / 'tensorboard'}"


def test_without_the_tensorboard_package_exit_2_and_no_run_folder(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # find_spec says it is not installed
    root = tmp_path / "runs"
    result = invoke("train", tiny_config(tmp_path / "tiny.yaml", root), "--set", "train.tensorboard=true")
    assert result.exit_code == 2, result.output
    assert (
        "train.tensorboard: received true, but the tensorboard package is not installed; "
        "expected it installed: pip install 'dlrun[tensorboard]'"
    ) in result.stderr
    assert not root.exists()
