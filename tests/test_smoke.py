"""The whole DAG through the command line on a tiny config: what CI also runs on Python 3.13
(`make smoke`), where the rest of the suite's references (torch) are not installed. The
console of that run, and of the same command again, holds our lines only."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import MULTI_PROCESSING, REPO, write_config
from tests.test_console import NOISE

pytestmark = pytest.mark.slow


def test_nas_run_prepares_trains_evaluates_and_exports(small_sources, tmp_path):
    config = write_config(small_sources / "smoke.yaml", name="smoke-violin",
                          audio=["audio/a-mono-32k.flac", "audio/b-stereo-44k-24bit.wav"], beam=MULTI_PROCESSING)
    root = tmp_path / "data"
    run = [sys.executable, "-m", "flows.cli", "run", str(config), "--data-root", str(root), "--steps", "20",
           "--set", "optim.batch_size=4", "--set", "log_every=10"]
    done = subprocess.run(run, cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [n for n in NOISE if n in done.stdout + done.stderr] == []
    # each stage's flow run says where it is in the UI, and its end is the stage's own lines
    assert "View at" in done.stderr and "Finished in state" not in done.stderr and "Running hook" not in done.stderr
    assert "step 20/20" in done.stderr and "left" in done.stderr  # progress with time left
    assert re.search(r"features: (\d+)/\1 chunks", done.stderr)
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)

    meta = json.loads((Path(lines["dataset"]) / "dataset.json").read_text())
    assert meta["counts"]["train"] > 0 and meta["counts"]["eval"] > 0

    (model_line,) = [key for key in lines if key.startswith("model ")]
    model = json.loads((Path(lines[model_line]) / "model.json").read_text())
    assert model["step"] == 20 and model_line == f"model {model['model_version']}"

    (eval_line,) = [key for key in lines if key.startswith("evaluation ")]
    loss = float(re.search(r"spectral loss ([\d.]+)", lines[eval_line]).group(1))
    assert 0 < loss < 100  # a real score: 20 steps leave it far from 0 and from inf/NaN
    assert Path(lines["listening report"]).is_file()

    exports = Path(lines["exports"])
    assert json.loads((exports / "export.json").read_text())["model_version"] == model["model_version"]
    for name in ("decoder.onnx", "decoder.int8.onnx", "decoder.tflite", "engine.npz"):
        assert (exports / name).stat().st_size > 0

    # Run again, nothing to do: the quick exit leaves Prefect's event queue draining.
    again = subprocess.run(run, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to do" in again.stderr and again.stdout == done.stdout
    assert [n for n in NOISE if n in again.stdout + again.stderr] == []
