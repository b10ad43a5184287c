"""`nas sweep`: points trained, evaluated, exported and benchmarked side by side on a local
Dask cluster, through the command line and the local Prefect server it starts; and the
sweep's arithmetic (grid, training time, Pareto front, seed spread) on known rows."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nas import sweep as s
from nas.export.runtimes import RUNTIMES
from nas.store.artifacts import MetricsRow, RuntimeFigures, Scores
from tests.conftest import REPO, write_config


def _card(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.cli.local_server import prefect_home, shared_state

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))

    with temporary_settings({PREFECT_API_URL: shared_state(prefect_home()).api}):
        return asyncio.run(read())[-1].data


def _sweep(config: Path, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "sweep", str(config), "--data-root", str(root), "--name", "tiny",
         "--preset", "cnn-tiny", "--recipe", "fast", "--steps", "10", "--set", "model.channels=4,12,16",
         "--set", "optim.batch_size=4", "--set", "log_every=5", "--runtime-seconds", "0.3",
         "--set", "sample_every=5"],  # 3 samples a point, not 11 (the curve's cadence at 10 steps)
        cwd=REPO, capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
def test_sweep_of_three_points_one_of_them_broken(prepared, tmp_path):
    from nas.config.presets import resolve_training
    from nas.store.datasets import load_metadata
    from nas.store.runs import run_id

    dataset_dir, config, base, _ = prepared
    root = tmp_path / "data"  # the prepared version alone: the sweep's prepare finds it published
    shutil.copytree(dataset_dir, root / dataset_dir.parent.name / dataset_dir.name)
    # One point fails as it runs: a file stands where its run folder goes. (Settings that are no
    # training are refused before any point starts: the next test.)
    (broken,) = s.grid(["cnn-tiny"], ["fast"], 10, 1, {"model.channels": [16], "optim.batch_size": [4], "log_every": [5]})
    runs = root / dataset_dir.parent.name / "runs"
    runs.mkdir()
    (runs / run_id(load_metadata(dataset_dir), resolve_training(config.training, broken.training()))).write_text("x")
    done = _sweep(base / "test.yaml", root)
    assert done.returncode == 1, done.stderr[-3000:]  # one point failed
    assert "2 of 3 points done" in done.stdout and "model.channels=16" in done.stdout
    # the Dask workers' lines in the command's format, and the cluster's own start silent
    assert "3 of 3 points to train: on 2 local Dask worker processes" in done.stderr
    assert " | INFO " not in done.stderr and "Dask cluster" not in done.stderr, done.stderr[-3000:]
    assert any(line.split(" ", 2)[1:2] == ["INFO"] and "nas.training" in line for line in done.stderr.splitlines())

    (folder,) = (root / "sweeps").iterdir()
    from nas.store.tables import read_rows

    rows = {next(p for p in r["label"].split("/") if p.startswith("model.channels")): r
            for r in read_rows(folder / "summary.parquet")}
    assert set(rows) == {"model.channels=4", "model.channels=12", "model.channels=16"}
    assert rows.pop("model.channels=16")["status"].startswith("failed:")
    timed = {(r["label"], r["runtime"]): r for r in read_rows(folder / "runtimes.parquet")}
    for row in rows.values():
        assert row["status"] == "done"
        for key in (*s.SCORES, "training_s", "steps_per_s"):
            assert math.isfinite(row[key]) and row[key] > 0, (row["label"], key, row[key])
        for runtime in RUNTIMES:
            figures = timed[row["label"], runtime]
            assert figures["error"] is None, figures
            for key in ("path_rtf", "decoder_rtf"):
                assert math.isfinite(figures[key]) and figures[key] > 0, (row["label"], runtime, key, figures[key])
        for runtime in ("onnxruntime", "litert", "openvino", "tvm"):  # the same float model, the same audio
            assert abs(timed[row["label"], runtime]["loss_change_pct"]) < 0.1, timed[row["label"], runtime]
    assert len(timed) == 2 * len(RUNTIMES)
    assert rows["model.channels=4"]["decoder_parameters"] < rows["model.channels=12"]["decoder_parameters"]

    from PIL import Image

    for plot in ("frontier.png", "curves.png"):
        pixels = np.asarray(Image.open(folder / plot).convert("L"), dtype=float)
        assert pixels.shape[0] > 300 and pixels.std() > 10  # drawn on, not blank
    assert len(json.loads((folder / "sweep.json").read_text())["points"]) == 3
    report = (folder / "report.md").read_text()
    assert "## Failed points" in report and "Pareto front" in report
    card = _card("sweep-tiny")
    assert "model.channels=16" in card and "failed" in card and "data:image/png;base64," in card

    made = sorted([*runs.glob("*/model/model.json"), *runs.glob("*/export/export.json"), *runs.glob("*/runtimes.json")])
    assert len(made) == 6
    before = {m: m.stat().st_mtime_ns for m in made}
    again = _sweep(base / "test.yaml", root)
    assert again.returncode == 1 and "2 of 3 points done" in again.stdout, again.stderr[-3000:]
    assert "1 of 3 points to train: in this process" in again.stderr  # no cluster to retry the broken point
    assert {m: m.stat().st_mtime_ns for m in made} == before  # nothing trained, exported or timed again


def test_unknown_presets_runtimes_seeds_and_settings_stop_before_any_work(small_sources, tmp_path, capsys):
    from flows.cli.main import main

    config = str(write_config(small_sources / "sweep-cli.yaml"))
    for flags, said in ((["--preset", "cnn-tiny,nope"], "--preset: unknown nope"),
                        (["--runtimes", "tensorrt"], "--runtime: unknown tensorrt"), (["--seeds", "0"], "--seeds 0"),
                        (["--set", "model.nope=1,2"], "--set: point cnn-tiny/thesis/model.nope=1/seed 0: model.nope: "
                                                      "Extra inputs are not permitted"),
                        (["--set", "model.channels=4,x"], "--set: point cnn-tiny/thesis/model.channels=x/seed 0: "
                                                          "model.channels: Input should be a valid integer")):
        assert main(["sweep", config, "--data-root", str(tmp_path / "data"), *flags]) == 2
        assert said in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_grid_covers_every_combination_and_seed():
    points = s.grid(["cnn-tiny", "cnn"], ["fast"], 100, 2, {"model.channels": [8, 16]})
    assert len(points) == 8 and len({p.label for p in points}) == 8
    assert {p.seed for p in points} == {0, 1}
    assert points[0].training()["sample_every"] == 10 and points[0].training()["seed"] == 0
    assert len({p.group for p in points}) == 4


def test_training_time_and_curves_from_metrics_rows():
    rows = [MetricsRow(step=0, eval_loss=9.0), MetricsRow(step=10, steps_per_s=2.0),
            MetricsRow(step=20, steps_per_s=5.0), MetricsRow(step=20, eval_loss=7.0)]
    seconds, curve = s.training_time(rows)
    assert seconds == pytest.approx(7.0)
    assert curve == [(0, 0.0, 9.0), (20, 7.0, 7.0)]


def _point(rtf: float, loss: float) -> s.FrontierPoint:
    return s.FrontierPoint(label=f"{rtf}", preset="cnn", runtime="nas-engine", rtf=rtf, spectral_loss=loss)


def _result(seed: int, group: str, loss: float, runtimes: list[RuntimeFigures] = ()) -> s.PointResult:
    scores = Scores(examples=4, spectral_loss=loss, loudness_mae_db=1.0, confident_frames=100, f0_mae_cents=5.0,
                    rpa=1.0)
    point = s.Point(preset="cnn", recipe="fast", steps=10, seed=seed, overrides={"model.channels": group})
    return s.PointResult(point=point, scores=scores, runtimes=list(runtimes))


def test_pareto_front_keeps_what_nothing_beats():
    points = [_point(1000, 6.0), _point(500, 5.5), _point(400, 5.8), _point(100, 5.0)]
    assert [p.rtf for p in s.pareto(points)] == [1000, 500, 100]


def test_seed_spread_flags_differences_the_seeds_could_make():
    results = [_result(seed, group, loss) for seed, group, loss in
               ((0, "a", 5.0), (1, "a", 5.2), (0, "b", 5.15), (1, "b", 5.25), (0, "c", 6.0), (1, "c", 6.02))]
    spread, close = s.seed_spread(results)
    assert {e.group: round(e.spectral_loss.mean, 3) for e in spread} == {
        "cnn/fast/model.channels=a": 5.1, "cnn/fast/model.channels=b": 5.2, "cnn/fast/model.channels=c": 6.01}
    assert [(a.rsplit("=", 1)[1], b.rsplit("=", 1)[1]) for a, b, _, _ in close] == [("a", "b")]


def test_a_runtime_s_loss_change_moves_its_point_and_float_noise_does_not_make_a_front():
    figures = [RuntimeFigures(runtime=r, path_rtf=rtf, loss_change_pct=change) for r, rtf, change in
               (("nas-engine", 300.0, 0.0), ("onnxruntime", 310.0, -1e-5), ("onnxruntime-int8", 450.0, 2.0),
                ("tvm", None, None))]
    points = {p.runtime: p for p in s.frontier_points([_result(0, "a", 5.0, figures)])}
    assert set(points) == {"nas-engine", "onnxruntime", "onnxruntime-int8"}  # one without figures is no point
    assert points["onnxruntime-int8"].spectral_loss == pytest.approx(5.1)
    assert [p.runtime for p in s.pareto(list(points.values()))] == ["onnxruntime-int8", "onnxruntime"]


def test_report_tables_the_points_their_runtimes_seeds_and_failures():
    engine = [RuntimeFigures(runtime="nas-engine", path_rtf=300.0, loss_change_pct=0.0)]
    int8 = [*engine, RuntimeFigures(runtime="onnxruntime-int8", path_rtf=450.0, loss_change_pct=2.0)]
    done = [_result(0, "a", 5.0, int8), _result(1, "a", 5.2, int8), _result(0, "b", 6.0, engine)]
    done = [r.model_copy(update={"decoder_parameters": 990, "training_s": 30.0, "steps_per_s": 2.0}) for r in done]
    failed = s.PointResult(point=s.Point(preset="cnn", recipe="fast", steps=10, seed=0), status="failed: no space")
    text = s.report("tiny", "violin", [*done, failed], "frontier.png", "curves.png")
    rows = [line for line in text.splitlines() if line.startswith("| cnn/")]
    assert rows[0] == ("| cnn/fast/model.channels=a/seed 0 | 990 | 5.000 | 5.0 (1.000) | 1.00 | 30 | 2.00 | 300 "
                       "| 450 (+2.0%) |")
    assert rows[2].endswith("| 300 | - |")  # b was not timed in int8
    assert "| cnn/fast/model.channels=a | 2 | 5.100 ± 0.141 | 5.0 ± 0.0 | 1.00 ± 0.00 |" in text
    assert "**cnn/fast/model.channels=a/seed 1** on onnxruntime-int8" not in text  # 5.2 * 1.02 is beaten
    assert "- cnn/fast/seed 0: failed: no space" in text and "3 of 4 points done" in text
