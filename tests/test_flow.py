"""The flows (prepare, train, evaluate, export) on a real (temporary) Prefect server, W&B offline, and the CLI."""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from tests.conftest import DEMO_MODELS, FAKE_KEY, REPO, artifacts_of, flow_runs, write_config
from tests.test_ddsp_vst import _interpreter


async def _task_names(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        return {r.name.rsplit("-", 1)[0] for r in runs}


def test_prepare_flow_cards_wandb_and_cache(prefect_server, small_sources, tmp_path, monkeypatch):
    from flows.prepare import prepare

    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)  # must not leak anywhere, even offline
    config = write_config(small_sources / "flow.yaml", name="flow-violin")
    root = tmp_path / "data"
    state = prepare(str(config), str(root), return_state=True)
    assert state.is_completed()
    dataset_dir = root / "flow-violin" / state.result().rsplit("/", 1)[-1]
    assert (dataset_dir / "dataset.json").exists()

    artifacts = artifacts_of(state.state_details.flow_run_id)
    card = artifacts["dataset-flow-violin"].data
    assert dataset_dir.name in card and "a-mono-32k.flac" in card and "cannot decode" in card
    assert "offline" in card
    table = artifacts["dataset-flow-violin-sources"].data
    assert "d-not-audio.wav" in table and "skipped" in table

    # The W&B offline run holds a `dataset` artifact named after the dataset, with dataset.json.
    runs = list((root / "wandb").rglob("run-*.wandb"))
    assert len(runs) == 1
    records = subprocess.run([str(REPO / ".venv/bin/wandb"), "leet", "inspect", str(runs[0])],
                             capture_output=True, text=True, timeout=120).stdout
    assert 'type:  "dataset"' in records and 'name:  "flow-violin"' in records
    assert f'\\"version\\":\\"{dataset_dir.name}\\"' in records

    # Nothing we wrote holds the key.
    for path in root.rglob("*"):  # records, manifest, cards, W&B run files
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert FAKE_KEY.encode() not in path.read_bytes(), path
    assert all(FAKE_KEY not in a.data for a in artifacts.values() if isinstance(a.data, str))

    # Unchanged config: no feature extraction, no upload, same folder.
    again = prepare(str(config), str(root), return_state=True)
    assert again.result() == state.result()
    names = asyncio.run(_task_names(again.state_details.flow_run_id))
    assert "features-and-records" not in names and "wandb-dataset-artifact" not in names
    assert len(list((root / "wandb").rglob("run-*.wandb"))) == 1


def test_cli_evaluate_and_export_take_the_config_s_own_model_or_say_what_is_missing(small_sources, prepared,
                                                                                      trained_run, tmp_path):
    """Reported before any flow starts: exit code 2, the reason, no traceback. Without
    --model-version the config's own model is taken (the run its settings make), not the
    newest model in the root, and the first line names it."""
    from nas.store.runs import load_model_summary

    config = str(small_sources / "test.yaml")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=300)

    done = cli("evaluate", config, "--data-root", str(tmp_path / "empty"))
    assert done.returncode == 2 and "no prepared dataset" in done.stderr
    root = tmp_path / "data"  # a prepared dataset but no model yet
    shutil.copytree(prepared[0], root / "test-violin" / prepared[0].name)
    done = cli("export", config, "--data-root", str(root))
    assert done.returncode == 2 and "the config's model (cnn-tiny, run cnn-tiny-" in done.stderr
    assert "is not trained yet" in done.stderr and "(there is none)" in done.stderr
    assert "Traceback" not in done.stderr

    runs = root / "test-violin" / "runs"
    shutil.copytree(trained_run.dir, runs / trained_run.dir.name, ignore=shutil.ignore_patterns("export", "evaluations"))
    newer = runs / "newer"  # e.g. a sweep's point, trained after the config's own model
    shutil.copytree(DEMO_MODELS / "frame", newer / "model")
    os.utime(newer / "model" / "model.json", (time.time() + 60, time.time() + 60))
    own = load_model_summary(trained_run.model).model_version
    done = cli("export", config, "--data-root", str(root), "--target", "ddsp-vst")  # the config's settings: no such run
    assert done.returncode == 2 and "--model-version picks a trained one (" in done.stderr and own in done.stderr
    settings = ["--recipe", "thesis", "--set", "optim.batch_size=4", "--set", "optim.learning_rate=3e-3"]
    done = cli("export", config, "--data-root", str(root), "--target", "ddsp-vst", *settings)  # trained_run's settings
    assert done.stdout.splitlines()[0] == f"model {own} (the config's own): {runs / trained_run.dir.name / 'model'}"
    assert done.returncode == 2 and "it was trained on loudness" in done.stderr  # the target refused after the choice
    other = load_model_summary(newer / "model").model_version
    done = cli("export", config, "--data-root", str(root), "--target", "ddsp-vst", "--model-version", other)
    assert done.stdout.splitlines()[0] == f"model {other} (given by --model-version): {newer / 'model'}"


def test_train_flow_card_wandb_model_artifact_and_rerun(prefect_server, prepared, monkeypatch):
    from flows.train import train
    from nas.config import load_config
    from nas.config.presets import resolve_training

    dataset_dir, _, _, root = prepared
    config = prepared[2] / "test.yaml"
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    settings = {"steps": 20, "log_every": 10, "sample_every": 10, "optim.batch_size": 4}
    recipe = resolve_training(load_config(config)[0].training, settings).model_dump(mode="json")
    state = train(str(config), data_root=str(root), recipe=recipe, return_state=True)
    assert state.is_completed()
    first = state.result()
    summary = first.summary
    assert summary.step == 20 and summary.dataset.version == dataset_dir.name
    run_dir = root / "test-violin" / "runs" / summary.run_id
    assert (run_dir / "model" / "model.json").exists() and (run_dir / "config.json").exists()

    artifacts = artifacts_of(state.state_details.flow_run_id)
    card = artifacts["model-test-violin"].data
    assert summary.model_version in card and "2,430" in card and dataset_dir.name in card
    assert summary.loss.log_floor == 1e-5 and "floored at 1e-05" in card  # the objective, beside ddsp's eval loss
    assert "offline" in card and "data:image/png;base64," in card
    assert "model-test-violin-metrics" in artifacts

    # The offline W&B training run logged metrics, samples and a `model` artifact.
    runs = [p for p in (root / "wandb").rglob("run-*.wandb") if summary.run_id in p.read_bytes().decode("latin-1")]
    assert len(runs) == 1
    records = subprocess.run([str(REPO / ".venv/bin/wandb"), "leet", "inspect", str(runs[0])],
                             capture_output=True, text=True, timeout=120).stdout
    assert 'type:  "model"' in records and "train/loss" in records and "samples/resynthesis" in records
    assert summary.model_version in records and dataset_dir.name in records
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), path

    # The same request again: nothing is retrained and no new W&B run is made.
    wandb_runs = len(list((root / "wandb").rglob("run-*.wandb")))
    trained = (run_dir / "metrics.parquet").stat().st_mtime_ns
    again = train(str(config), data_root=str(root), recipe=recipe, return_state=True)
    assert again.result().summary.model_version == summary.model_version
    assert again.result().wandb == first.wandb
    assert len(list((root / "wandb").rglob("run-*.wandb"))) == wandb_runs
    assert (run_dir / "metrics.parquet").stat().st_mtime_ns == trained


def test_cli_train_rejects_bad_settings_cleanly(small_sources):
    config = write_config(small_sources / "rejects.yaml")  # its own: whichever test runs first on this worker
    for args, message in ((["--set", "optim.nope=1"], "optim.nope"), (["--preset", "huge"], "invalid choice"),
                          (["--set", "steps=many"], "steps")):
        result = subprocess.run([sys.executable, "-m", "flows.cli", "train", str(config), *args], cwd=REPO,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr[-2000:]
        assert message in result.stderr and "Traceback" not in result.stderr


def _pipeline_artifacts(state) -> dict:
    """The artifacts of a pipeline's run and its stages' (the session's server holds other
    tests' runs of test-violin too), by key."""
    run_id = state.state_details.flow_run_id
    return artifacts_of(run_id, *(run.id for run in flow_runs(parent=run_id)))


@pytest.mark.slow
def test_pipeline_reuses_what_is_done_and_publishes_lineage(prefect_server, prepared, trained_run, small_sources,
                                                           tmp_path, monkeypatch):
    """prepare -> train -> evaluate -> export; more training steps redo training (resumed),
    evaluation and export but not preparation; an unchanged re-run does no work."""
    import flows.entry
    from flows.pipeline import pipeline
    from nas.config import load_config

    parses = []  # every flow of a run reads the config through flows.entry
    monkeypatch.setattr(flows.entry, "load_config", lambda path: parses.append(path) or load_config(path))

    root = tmp_path / "data"  # a data root of its own, holding the already prepared dataset
    dataset_dir = root / "test-violin" / prepared[0].name
    shutil.copytree(prepared[0], dataset_dir)
    prepared_at = (dataset_dir / "dataset.json").stat().st_mtime_ns
    # ... and the run trained to 60 steps with the same recipe (not what other tests made of it).
    shutil.copytree(trained_run.dir, root / "test-violin" / "runs" / trained_run.dir.name,
                    ignore=shutil.ignore_patterns("export", "evaluations"))
    config = str(small_sources / "test.yaml")
    settings = {"optim.batch_size": 4, "optim.learning_rate": 3e-3, "log_every": 10}

    state = pipeline(config, str(root), {"steps": 60, **settings}, return_state=True)
    first, artifacts = state.result(), _pipeline_artifacts(state)
    assert parses == [config]  # parsed once where the run entered, and passed on to its four subflows
    assert first.dataset_dir == str(dataset_dir) and first.run.model_version == f"{trained_run.dir.name}-60"
    table = artifacts["evaluation-test-violin"]
    assert table.type == "table" and len(json.loads(table.data)) == first.evaluation.metrics.examples
    card = artifacts["evaluation-test-violin-report"].data
    assert first.run.model_version in card and dataset_dir.name in card and "report.html" in card
    assert "decoder.int8.onnx" in artifacts["export-test-violin"].data
    assert first.evaluation.eval_id in artifacts["pipeline-test-violin"].data
    assert "No W&B run recorded" in artifacts["model-test-violin"].data  # trained outside
    # The offline W&B evaluation run holds the per-example table, the audio and the scores.
    runs = [p for p in (root / "wandb").rglob("run-*.wandb") if f"eval-{first.run.model_version}" in
            p.read_bytes().decode("latin-1")]
    assert len(runs) == 1
    records = subprocess.run([str(REPO / ".venv/bin/wandb"), "leet", "inspect", str(runs[0])],
                             capture_output=True, text=True, timeout=120).stdout
    assert "eval/examples" in records and "listen/0-resynthesis" in records and "eval/spectral_loss" in records

    state = pipeline(config, str(root), {"steps": 70, **settings}, return_state=True)
    more = state.result()
    assert len(flow_runs(parent=state.state_details.flow_run_id)) == 4  # prepare (found), train, evaluate, export
    assert (dataset_dir / "dataset.json").stat().st_mtime_ns == prepared_at  # not prepared again
    assert more.run.run_dir == first.run.run_dir and more.run.model_version.endswith("-70")  # resumed
    assert more.evaluation.eval_id != first.evaluation.eval_id
    assert "Logged offline" in _pipeline_artifacts(state)["model-test-violin"].data
    export_json = more.layout.export / "export.json"
    assert json.loads(export_json.read_text())["model_version"] == more.run.model_version

    exported_at = export_json.stat().st_mtime_ns
    state = pipeline(config, str(root), {"steps": 70, **settings}, return_state=True)
    again = state.result()
    assert again.evaluation == more.evaluation and export_json.stat().st_mtime_ns == exported_at
    assert again.run == more.run and again.export == more.export and again.dataset_dir == more.dataset_dir
    # nothing left to do: one flow run, found without starting the stages' subflows or tasks
    assert flow_runs(parent=state.state_details.flow_run_id) == []
    assert asyncio.run(_task_names(state.state_details.flow_run_id)) == set()
    assert again.evaluation.eval_id in artifacts_of(state.state_details.flow_run_id)["pipeline-test-violin"].data
    assert (dataset_dir / "dataset.json").stat().st_mtime_ns == prepared_at

    # The scheduled re-evaluation scores each config's own model again (the run its training
    # section makes: here the one above), in the same history, and skips configs whose
    # dataset has no model here.
    from flows.reevaluate import reevaluate

    configs = tmp_path / "configs"
    configs.mkdir()
    write_config(configs / "test.yaml", audio=[str(small_sources / "audio" / "*")],
                 training={"overrides": {k: v for k, v in settings.items() if k.startswith("optim.")}})
    write_config(configs / "other.yaml", name="other-violin")
    state = reevaluate(str(configs), str(root), return_state=True)
    rows = {r["config"]: r for r in state.result()}
    assert rows["other.yaml"]["status"].startswith("skipped") and "other-violin" in rows["other.yaml"]["status"]
    row = rows["test.yaml"]
    assert row["status"] == "evaluated" and row["model_version"] == more.run.model_version
    assert row["regression"] == "no" and row["eval_id"] != more.evaluation.eval_id
    history = [r for r in pq.read_table(root / "test-violin" / "evaluations.parquet").to_pylist()
               if r["model_version"] == more.run.model_version]
    assert [r["eval_id"] for r in history] == [more.evaluation.eval_id, row["eval_id"]]
    assert "reevaluation" in artifacts_of(state.state_details.flow_run_id)

    status = subprocess.run([sys.executable, "-m", "flows.cli", "status", "--data-root", str(root)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0
    line = [row for row in status.stdout.splitlines() if row.startswith("test-violin")][0]
    assert dataset_dir.name in line and more.run.model_version in line and row["eval_id"] in line


def test_flows_import_without_tensorflow():
    """A fully cached `nas run` never needs TensorFlow, so loading the flows must not load it
    (it is most of a cached re-run's time otherwise: benchmarks/cached_rerun.py)."""
    check = ("import sys, flows.cli.main, flows.pipeline, flows.reevaluate; "
             "print(sorted(m for m in ('tensorflow', 'ddsp', 'apache_beam', 'wandb') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_export_flow_writes_a_ddsp_vst_model_and_the_cli_refuses_others(prefect_server, vst_run, trained_run,
                                                                         small_sources):
    """The ddsp-vst preset, trained on power from prepared records, exported for the plugin
    through the flow; a loudness-trained model refused before any flow starts: exit 2, the
    rule and what breaks it, nothing written."""
    from flows.export import export
    from nas.store.runs import load_model_summary

    root, layout = vst_run
    config = str(small_sources / "test.yaml")
    result = export(config, load_model_summary(layout.model).model_version, str(root), target="ddsp-vst")
    assert result.model == layout.ddsp_vst / "test-violin.tflite" and result.history_floats == 420
    interpreter = _interpreter(model_path=str(result.model))  # as the plugin loads it: builtin ops only
    assert {d["name"] for d in interpreter.get_input_details()} == {"call_f0_scaled:0", "call_pw_scaled:0",
                                                                    "call_state:0"}
    assert all(p.exists() for p in result.reverbs)

    refused = load_model_summary(trained_run.model).model_version
    done = subprocess.run([sys.executable, "-m", "flows.cli", "export", config, "--target", "ddsp-vst",
                           "--model-version", refused, "--data-root", str(trained_run.dir.parents[2])],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "DDSP-VST plays models of 16000 Hz audio" in done.stderr and "it was trained on loudness" in done.stderr
    assert not trained_run.ddsp_vst.exists()


def test_export_flow_writes_a_neutone_model_through_the_sdks_checks_and_the_cli_refuses_one_that_cannot_stream(
        prefect_server, trained_run, prepared, small_sources, tmp_path):
    """neutone-sdk's save_neutone_model (scripting, sample renders, reload and comparison,
    offline mode, its latency report) in the export's environment, on a model trained here; a model that
    cannot stream (ddsp's sequence Normalize) refused before any flow starts: exit 2, the
    reason, nothing written."""
    from flows.export import export
    from nas.store.runs import RunLayout, load_model_summary

    config = str(small_sources / "test.yaml")
    version = load_model_summary(trained_run.model).model_version
    result = export(config, version, str(trained_run.dir.parents[2]), target="neutone")
    assert result.folder == trained_run.neutone and result.delay_samples == 512
    metadata = json.loads((result.folder / "metadata.json").read_text())
    assert metadata["native_sample_rates"] == [16000] and metadata["native_buffer_sizes"][0] == 128
    assert [p["name"] for p in metadata["neutone_parameters"].values()][:3] == ["octave", "level", "noise"]
    assert len(list((result.folder / "samples").glob("*.mp3"))) + len(list((result.folder / "samples").glob("*.wav")))

    root = tmp_path / "data"  # the prepared dataset, and the demo's model of before norm `frame`
    shutil.copytree(prepared[0], root / "test-violin" / prepared[0].name)
    old = RunLayout(root / "test-violin" / "runs" / "sequence")
    shutil.copytree(REPO / "tests" / "data" / "demo-models" / "sequence", old.model)
    done = subprocess.run([sys.executable, "-m", "flows.cli", "export", config, "--target", "neutone",
                           "--model-version", load_model_summary(old.model).model_version, "--data-root", str(root)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "Neutone FX plays a model as it streams" in done.stderr and "model.norm=frame" in done.stderr
    assert not old.neutone.exists()


def test_a_source_whose_name_holds_html_shows_as_text_in_the_dataset_card(prepared):
    """A file's name and a decoder's reason come from outside: the Prefect UI renders the card's
    Markdown, so they are escaped, and a bar in a name does not split the table's row."""
    from nas.data.audio import SourceFile
    from nas.store.artifacts import WandbRecord
    from nas.store.datasets import load_metadata
    from tasks.cards import dataset_card

    dataset_dir = prepared[0]
    name = "<img src=x onerror=alert(1)>|solo.wav"
    source = SourceFile(path=f"/audio/{name}", sha256="0" * 64, status="skipped", reason="cannot decode: <b>odd</b>")
    card = dataset_card(dataset_dir, load_metadata(dataset_dir), [source], WandbRecord())
    assert "<img" not in card and "<b>" not in card
    (row,) = [line for line in card.splitlines() if "solo.wav" in line]
    assert row == ("| &lt;img src=x onerror=alert(1)&gt;\\|solo.wav | `0000000000000000` | 0.0 | "
                   "skipped: cannot decode: &lt;b&gt;odd&lt;/b&gt; |")
