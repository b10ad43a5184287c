"""The Beam pipeline: sources -> chunks -> f0 + loudness -> windows -> sharded TFRecords.

Shards are written by our own step (group by (split, shard), sort by example key)
rather than `WriteToTFRecord`, whose shard assignment is random: this way the same
inputs give byte-identical files on every runner.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

from .audio import read_mono, resample
from .config import DatasetConfig
from .records import Chunk, example_key, serialize, shard_name, shard_of, split_chunk


def pipeline_options(config: DatasetConfig) -> PipelineOptions:
    beam_config = config.beam
    args = [f"--runner={beam_config.runner}", "--default_sdk_harness_log_level=WARNING"]
    if beam_config.runner == "DirectRunner":
        args += [f"--direct_num_workers={beam_config.direct_num_workers}",
                 f"--direct_running_mode={beam_config.direct_running_mode}"]
    args += [f"--{key}={value}" for key, value in beam_config.options.items()]
    return PipelineOptions(args)


class LoadChunks(beam.DoFn):
    """(path, [Chunk]) -> (Chunk, audio at the dataset rate, audio at 16 kHz) per chunk."""

    def __init__(self, sample_rate: int, chunk_secs: float):
        self.sample_rate, self.chunk_secs = sample_rate, chunk_secs

    def process(self, source):
        path, chunks = source
        mono, rate, _ = read_mono(Path(path))
        audio = resample(mono, rate, self.sample_rate)
        audio_16k = audio if self.sample_rate == 16000 else resample(mono, rate, 16000)
        del mono
        for chunk in chunks:
            a = slice(round(chunk.start_s * self.sample_rate), round((chunk.start_s + self.chunk_secs) * self.sample_rate))
            b = slice(round(chunk.start_s * 16000), round((chunk.start_s + self.chunk_secs) * 16000))
            yield chunk, path, audio[a].copy(), audio_16k[b].copy()


class ComputeFeatures(beam.DoFn):
    """CREPE f0 and loudness per chunk; the network is built once per worker."""

    def __init__(self, config: DatasetConfig):
        self.config = config

    def setup(self):
        from .pitch.network import load_network

        load_network(self.config.crepe.capacity)

    def process(self, element):
        from .features import compute_features

        chunk, path, audio, audio_16k = element
        c = self.config
        start = time.perf_counter()
        features = compute_features(audio_16k, c.frame_rate, c.centered, c.crepe.capacity,
                                    c.crepe.viterbi, c.crepe.batch_frames)
        seconds = len(audio_16k) / 16000
        # Printed, not logged: Beam workers are separate processes sharing our stderr.
        print(f"  features {Path(path).name} chunk {chunk.index}: {seconds:.1f} s of audio "
              f"in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        yield chunk, path, {"audio": audio, "audio_16k": audio_16k, **features}


def to_examples(element, config: DatasetConfig):
    chunk, _, features = element
    n_shards = {"train": config.train_shards, "eval": config.eval_shards}[chunk.split]
    for i, example in enumerate(split_chunk(features, config.sample_rate, config.frame_rate,
                                            config.example_secs, config.hop_secs, config.centered)):
        key = example_key(chunk.key, i)
        yield (chunk.split, shard_of(key, n_shards)), (key, serialize(example))


def to_feature_rows(element, frame_rate: int):
    chunk, path, features = element
    n = len(features["f0_hz"])
    yield {
        "path": path, "source_sha256": chunk.source_sha256, "chunk": chunk.index, "split": chunk.split,
        "time_s": (chunk.start_s + np.arange(n) / frame_rate).tolist(),
        "f0_hz": features["f0_hz"].tolist(), "f0_confidence": features["f0_confidence"].tolist(),
        "loudness_db": features["loudness_db"].tolist(),
    }


class WriteShard(beam.DoFn):
    """((split, shard), [(key, bytes)]) -> one TFRecord file, examples sorted by key."""

    def __init__(self, out_dir: str, shards: dict[str, int]):
        self.out_dir, self.shards = out_dir, shards

    def process(self, element):
        import tensorflow as tf

        (split, shard), examples = element
        examples = sorted(examples)
        path = Path(self.out_dir) / shard_name(split, shard, self.shards[split])
        with tf.io.TFRecordWriter(str(path)) as writer:
            for _, record in examples:
                writer.write(record)
        yield split, len(examples)


def run_pipeline(config: DatasetConfig, sources: list[tuple[str, list[Chunk]]], out_dir: Path) -> list[dict]:
    """Write the shards into `out_dir`; returns the frame-level feature rows per chunk."""
    shards = {"train": config.train_shards, "eval": config.eval_shards}
    rows_path = out_dir / ".feature-rows"
    with beam.Pipeline(options=pipeline_options(config)) as pipeline:
        features = (
            pipeline
            | "sources" >> beam.Create(sources)
            | "reshuffle_sources" >> beam.Reshuffle()
            | "load_chunks" >> beam.ParDo(LoadChunks(config.sample_rate, config.chunk_secs))
            | "reshuffle_chunks" >> beam.Reshuffle()
            | "features" >> beam.ParDo(ComputeFeatures(config))
        )
        _ = (
            features
            | "examples" >> beam.FlatMap(to_examples, config)
            | "group_shards" >> beam.GroupByKey()
            | "write_shards" >> beam.ParDo(WriteShard(str(out_dir), shards))
        )
        _ = (
            features
            | "feature_rows" >> beam.FlatMap(to_feature_rows, config.frame_rate)
            | "feature_json" >> beam.Map(json.dumps)
            | "write_rows" >> beam.io.WriteToText(str(rows_path), shard_name_template="-SSSSS-of-NNNNN")
        )
    rows = []
    for part in sorted(out_dir.glob(".feature-rows-*")):
        rows += [json.loads(line) for line in part.read_text().splitlines() if line]
        part.unlink()
    for split, n in shards.items():  # a shard that drew no example is still written, empty
        for i in range(n):
            path = out_dir / shard_name(split, i, n)
            if not path.exists():
                path.write_bytes(b"")
    return sorted(rows, key=lambda r: (r["path"], r["chunk"]))
