"""Evaluate a trained model on a dataset's eval split: scores per example and overall,
listening material, an HTML report, and a history that flags regressions.

An evaluation folder holds `evaluation.parquet` (one row per example), `metrics.json`
(aggregates, the model and dataset versions judged, regressions), `listen/` (WAV pairs,
spectrograms, f0/loudness plots) and `report.html`. It is written under a temporary name
and renamed when complete.
"""

from __future__ import annotations

import logging
import time
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf

from nas.atomic import file_lock, replace_dir, staging_dir
from nas.config.presets import LossConfig
from nas.data.audio import write_wav
from nas.data.reader import record_provider
from nas.locations import location
from nas.models.saved import load_model
from nas.models.synthesizer import make_preprocessor, make_spectral_loss, preprocess
from nas.plots import plot_feature_tracks, plot_spectrograms
from nas.store.artifacts import DatasetMeta, EvaluatedDataset, Evaluation, Listening, RunSummary
from nas.store.datasets import load_metadata
from nas.store.names import METRICS_FILE, REPORT_FILE, TABLE_FILE

from .history import append_history, latest_evaluation, previous_model
from .metrics import Tracks, aggregate, regressions, score_example
from .report import write_report

log = logging.getLogger(__name__)

BATCH = 8
RAW_KEYS = tuple(f.name for f in fields(Tracks))  # a record's, kept beside the preprocessed batch


def _examples(dataset_dir: Path, split: str, metadata: DatasetMeta, preprocessor) -> tf.data.Dataset:
    """Preprocessed inputs for the model plus the record's own frame-rate features."""
    def both(example):
        return {**{f"record_{k}": example[k] for k in RAW_KEYS}, **preprocess(preprocessor, example)}

    both = tf.autograph.experimental.do_not_convert(both)  # as nas.training.data's
    return record_provider(dataset_dir, split, metadata).get_dataset(shuffle=False).map(both).batch(BATCH)


def _check_compatible(summary: RunSummary, metadata: DatasetMeta, dataset_dir: Path) -> None:
    for key in ("sample_rate", "example_secs"):
        if getattr(summary, key) != getattr(metadata, key):
            raise ValueError(f"{dataset_dir}: {key} is {getattr(metadata, key)}, but model {summary.model_version} "
                             f"was trained with {getattr(summary, key)}")


def evaluate(model_dir: Path, dataset_dir: Path, evaluations_dir: Path, history: Path, listen: int = 4,
             seed: int = 0, lock: Callable = file_lock) -> Evaluation:
    """Score the model in `model_dir` on `dataset_dir`; returns the metrics.json content.
    `lock` guards the history's append (see `append_history`)."""
    model, summary = load_model(model_dir)
    metadata = load_metadata(dataset_dir)
    _check_compatible(summary, metadata, dataset_dir)
    split = metadata.counts.evaluated
    created = datetime.now(timezone.utc)
    eval_id = f"{metadata.version}-{created:%Y%m%dT%H%M%S}"
    final = location(evaluations_dir) / eval_id
    staging = staging_dir(final)
    (staging / "listen").mkdir()

    tf.keras.utils.set_random_seed(seed)  # the filtered noise: the same model scores the same
    preprocessor = make_preprocessor(model.config, metadata.sample_rate, metadata.example_secs)
    loss_fn = make_spectral_loss(LossConfig())
    rows, listened, started = [], [], time.perf_counter()
    total = metadata.counts.of(split)
    for batch in _examples(dataset_dir, split, metadata, preprocessor):
        audio = model(batch)["audio_synth"].numpy()
        original = batch["audio"].numpy()
        for i in range(len(audio)):
            index = len(rows)
            loss = float(loss_fn(original[i:i + 1], audio[i:i + 1]))
            reference = Tracks(*(batch[f"record_{k}"][i].numpy() for k in RAW_KEYS))
            scores, tracks = score_example(index, reference, audio[i], loss, metadata)
            rows.append(scores)
            if index < listen:
                listened.append(_listening(staging, index, original[i], audio[i], reference, tracks,
                                           metadata))
            if len(rows) % 10 == 0 or len(rows) == total:
                log.info("evaluated %d/%d examples (%.1f s)", len(rows), total, time.perf_counter() - started)
    if not rows:
        raise ValueError(f"{dataset_dir}: no examples to evaluate")

    overall = aggregate(rows)
    previous = latest_evaluation(history, summary.model_version, metadata.version)
    worse = regressions(previous, overall) if previous else []
    result = Evaluation(
        eval_id=eval_id, created=created.isoformat(timespec="seconds"),
        model_version=summary.model_version, preset=summary.preset, run_id=summary.run_id,
        dataset=EvaluatedDataset(name=metadata.name, version=metadata.version, split=split),
        metrics=overall, previous_eval_id=previous.eval_id if previous else None,
        regression=bool(worse), regressions=worse, listen=listened, seed=seed,
        previous_model=previous_model(history, summary.model_version),
        dir=str(final),
    )
    pq.write_table(pa.Table.from_pylist([r.model_dump() for r in rows]), staging / TABLE_FILE)
    result.save(staging / METRICS_FILE)
    write_report(staging / REPORT_FILE, result, rows)
    replace_dir(staging, final, commit=METRICS_FILE)
    append_history(history, result, lock)
    if worse:
        log.warning("regression of %s on %s %s: %s", summary.model_version, metadata.name,
                    metadata.version, "; ".join(worse))
    return result


def _listening(folder: Path, index: int, original: np.ndarray, audio: np.ndarray, reference: Tracks,
               tracks: Tracks, metadata: DatasetMeta) -> Listening:
    """Writes one example's WAVs and plots into the evaluation folder's listen/."""
    stem = f"{index:03d}"
    heard = Listening(example=index, original=f"listen/{stem}-original.wav",
                      resynthesis=f"listen/{stem}-resynthesis.wav", spectrogram=f"listen/{stem}-spectrogram.png",
                      features=f"listen/{stem}-features.png")
    for file, signal in ((heard.original, original), (heard.resynthesis, audio)):
        write_wav(folder / file, signal, metadata.sample_rate)
    plot_spectrograms(original, audio, metadata.sample_rate, folder / heard.spectrogram,
                      title=f"example {index}")
    plot_feature_tracks(metadata.frame_rate, {"f0 (Hz)": (reference.f0_hz, tracks.f0_hz),
                                              "loudness (dB)": (reference.loudness_db, tracks.loudness_db)},
                        folder / heard.features, title=f"example {index}")
    return heard
