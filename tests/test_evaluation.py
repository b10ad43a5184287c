"""Evaluation metrics on known answers, the evaluation of a trained model with its
history and report, and timbre transfer through the CLI."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf

from nas.evaluation.evaluate import evaluate
from nas.evaluation.history import read_history
from nas.evaluation.metrics import regressions, score_example
from nas.store.artifacts import CrepeMeta, DatasetMeta, HistoryRow, Scores
from nas.store.datasets import evaluation_history, load_metadata
from tests.conftest import REPO, demo_audio

# the settings of dataset.json that scoring reads
METADATA = DatasetMeta.model_construct(sample_rate=16000, frame_rate=50, centered=True,
                                       crepe=CrepeMeta(model="tiny", viterbi=True))


def _reference(audio):
    from nas.evaluation.metrics import resynthesis_tracks

    return resynthesis_tracks(audio, METADATA)


def test_metrics_score_the_input_itself_perfect_and_a_semitone_off_at_100_cents():
    import soxr

    audio, rate = demo_audio("violin-01")
    audio = soxr.resample(audio[: 4 * rate], rate, 16000)
    reference = _reference(audio)
    same, _ = score_example(0, reference, audio, 0.0, METADATA)
    assert same.confident_frames > 50  # of 200 frames
    assert same.f0_mae_cents < 1e-6 and same.rpa == 1.0 and same.loudness_mae_db < 1e-6
    # Played back a semitone higher: resample by 2^(-1/12) and keep the first 4 s.
    sharp = soxr.resample(audio, 16000, 16000 * 2 ** (-1 / 12))[: len(audio)]
    shifted, _ = score_example(1, reference, np.pad(sharp, (0, len(audio) - len(sharp))), 0.0, METADATA)
    assert 85 < shifted.f0_mae_cents < 115 and shifted.rpa < 0.2
    quieter, _ = score_example(2, reference, audio * 10 ** (-6 / 20), 0.0, METADATA)  # -6 dB
    assert 5.0 < quieter.loudness_mae_db < 6.5 and quieter.f0_mae_cents < 5


def test_regressions_flag_worse_metrics_only():
    scores = {"spectral_loss": 5.0, "f0_mae_cents": 20.0, "rpa": 0.9, "loudness_mae_db": 3.0, "examples": 4}
    base = HistoryRow(**scores, eval_id="e", created="2026-12-01", model_version="m", dataset_version="d",
                      regression=False, dir="/e")

    def now(**changed):
        return Scores(**{**scores, "confident_frames": 100, **changed})

    assert regressions(base, now()) == []
    assert regressions(base, now(spectral_loss=4.0, rpa=0.95)) == []
    worse = regressions(base, now(spectral_loss=5.5, rpa=0.8))
    assert [w.split()[0] for w in worse] == ["spectral_loss", "rpa"]


def test_evaluation_of_a_trained_model_history_and_report(trained_run, prepared):
    dataset_dir, _, _, root = prepared
    history = evaluation_history(root, "test-violin")
    first = evaluate(trained_run.model, dataset_dir, trained_run.evaluations, history, listen=2)
    second = evaluate(trained_run.model, dataset_dir, trained_run.evaluations, history, listen=2)
    assert first.metrics == second.metrics  # seeded: the same model scores the same
    assert second.previous_eval_id == first.eval_id and not second.regression
    meta = load_metadata(dataset_dir)
    assert first.dataset.version == meta.version and first.model_version.startswith("cnn-tiny-")
    m = first.metrics
    assert m.examples == meta.counts.eval and np.isfinite(m.spectral_loss)
    assert 0 <= m.rpa <= 1 and m.loudness_mae_db > 0

    folder = trained_run.evaluations / first.eval_id
    assert json.loads((folder / "metrics.json").read_text())["metrics"]["spectral_loss"] == m.spectral_loss
    rows = pq.read_table(folder / "evaluation.parquet").to_pylist()
    assert len(rows) == m.examples and np.isclose(np.mean([r["spectral_loss"] for r in rows]), m.spectral_loss)
    page = (folder / "report.html").read_text()
    for item in first.listen:
        for kind in ("original", "resynthesis", "spectrogram", "features"):
            assert (folder / getattr(item, kind)).stat().st_size > 1000 and getattr(item, kind) in page
    assert page.count("<audio") == 4
    resynthesis, rate = sf.read(folder / first.listen[0].resynthesis)
    assert rate == 16000 and len(resynthesis) == 64000
    assert [r.eval_id for r in read_history(history)][-2:] == [first.eval_id, second.eval_id]
    assert not list(trained_run.evaluations.glob("*.partial"))


def test_a_worse_model_under_the_same_version_is_flagged_as_a_regression(trained_run, prepared, tmp_path):
    """The same model version re-evaluated after its weights went bad (e.g. a corrupted
    copy) is reported as a regression in metrics.json, the history and the report."""
    import tensorflow as tf

    from nas.models.saved import load_model

    dataset_dir = prepared[0]
    model_dir = tmp_path / "model"
    shutil.copytree(trained_run.model, model_dir)
    history = tmp_path / "evaluations.parquet"
    before = evaluate(model_dir, dataset_dir, tmp_path / "evaluations", history, listen=0)
    model, _ = load_model(model_dir)
    kernel = model.decoder.dense_out.kernel
    kernel.assign(kernel + tf.random.stateless_normal(kernel.shape, seed=[0, 1], stddev=1.0))
    tf.train.Checkpoint(model=model).write(str(model_dir / "weights"))
    after = evaluate(model_dir, dataset_dir, tmp_path / "evaluations", history, listen=0)
    assert after.previous_eval_id == before.eval_id and after.regression
    assert any(r.startswith("spectral_loss") for r in after.regressions)
    assert [r.regression for r in read_history(history)] == [False, True]
    assert "Regression against evaluation" in after.report.read_text()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "flows.cli", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def test_transfer_cli_plays_a_recording_and_rejects_bad_input(trained_run, tmp_path):
    audio, rate = demo_audio("violin-03")
    source = tmp_path / "melody.wav"
    sf.write(source, audio[: 5 * rate] * 0.3, rate)  # quieter than the dataset: loudness is raised
    out = tmp_path / "out.wav"
    done = _cli("transfer", trained_run.dir, source, "-o", out)
    assert done.returncode == 0, done.stderr[-2000:]
    played, played_rate = sf.read(out)  # at the recording's rate
    assert played_rate == rate and abs(len(played) / played_rate - 5.0) < 0.01 and np.isfinite(played).all()
    assert "shifted +0 octave(s)" in done.stdout

    t = np.arange(3 * rate) / rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0, 466.2)) * 0.2
    sf.write(tmp_path / "chord.wav", chord, rate)
    sf.write(tmp_path / "silent.wav", np.zeros(2 * rate), rate)
    (tmp_path / "text.wav").write_text("not audio")
    for name, reason in (("chord.wav", "does not look monophonic"), ("silent.wav", "silent"),
                         ("text.wav", "cannot decode")):
        done = _cli("transfer", trained_run.dir, tmp_path / name, "-o", tmp_path / f"{name}.out.wav")
        assert done.returncode == 2 and name in done.stderr and reason in done.stderr, done.stderr[-1000:]
        assert "Traceback" not in done.stderr and not (tmp_path / f"{name}.out.wav").exists()
