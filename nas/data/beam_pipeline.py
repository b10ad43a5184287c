"""The Beam pipeline: chunks -> audio + f0 + loudness -> windows -> sharded TFRecords.

Each chunk reads only its own stretch of its file, and its serialized examples go to a
spill file rather than through the shuffle, so memory stays bounded however long the
files are. Shards are written by our own step (group by (split, shard), sort by example
key) rather than `WriteToTFRecord`, whose shard assignment is random: this way the same
inputs give byte-identical files on every runner.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import apache_beam as beam
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

from ..atomic import atomic_path, remove_tree
from ..config import DatasetConfig
from ..constants import SAMPLE_RATE
from ..locations import is_remote, location
from ..progress import clock, progress
from ..store.cache import cached_audio
from .audio import read_segment
from .records import FRAME_KEYS, Chunk, example_key, serialize, shard_name, shard_of, split_chunk
from .tfrecord import write_records

log = logging.getLogger(__name__)


SPILL_DIR = ".spill"  # per chunk: serialized examples and frame-level features, for the steps after
FRAMES_SUFFIX = ".frames.json"

# Runners Beam knows only by their module path.
RUNNER_PATHS = {"DaskRunner": "apache_beam.runners.dask.dask_runner.DaskRunner"}


def pipeline_options(config: DatasetConfig) -> PipelineOptions:
    beam_config = config.beam
    runner = RUNNER_PATHS.get(beam_config.runner, beam_config.runner)
    # Workers log at the level set here for Beam's own logger (the CLI quietens it).
    level = logging.getLevelName(max(logging.getLogger("apache_beam").getEffectiveLevel(), logging.WARNING))
    args = [f"--runner={runner}", f"--default_sdk_harness_log_level={level}"]
    if beam_config.runner == "DirectRunner":
        args += [f"--direct_num_workers={beam_config.direct_num_workers}",
                 f"--direct_running_mode={beam_config.direct_running_mode}"]
    if beam_config.runner == "DaskRunner" and not {"dask_npartitions", "dask_partition_size"} & set(beam_config.options):
        args.append("--dask_partition_size=1")  # a chunk is seconds of CREPE: spread them one by one
    args += [f"--{key}={value}" for key, value in beam_config.options.items()]
    return PipelineOptions(args)


class ComputeFeatures(beam.DoFn):
    """(path, Chunk) -> its audio (read from the file, only that part) with f0 and
    loudness; the pitch network is built once per worker."""

    def __init__(self, config: DatasetConfig):
        self.config = config

    def setup(self):
        if self.config.pitch.method == "swiftf0":
            from ..pitch.swift import detector

            detector()
        else:
            from ..pitch.onnx_network import load_onnx_network

            load_onnx_network(self.config.crepe.capacity)

    def process(self, element):
        from .features import compute_features

        path, chunk = element
        c = self.config
        source = cached_audio(location(path), chunk.source_sha256)  # a bucket's, if ingestion here fetched it
        audio = read_segment(source, chunk.start_s, c.chunk_secs, c.sample_rate)
        audio_16k = (audio if c.sample_rate == SAMPLE_RATE else
                     read_segment(source, chunk.start_s, c.chunk_secs, SAMPLE_RATE))
        features = compute_features(audio_16k, c)
        yield chunk, path, {"audio": audio, "audio_16k": audio_16k, **features}


class SpillChunk(beam.DoFn):
    """A chunk's serialized examples and frame-level features -> spill files; emits where
    each record lies.

    Only (key, spill, offset, length) crosses the shuffle to the shard writers, so memory
    does not grow with the dataset (a shuffle of the records themselves would hold them
    all). One chain with one end, too: Beam's Dask runner computes only the last step."""

    def __init__(self, config: DatasetConfig, spill_dir: str, shards: dict[str, int]):
        self.config, self.spill_dir, self.shards = config, location(spill_dir), shards

    def process(self, element):
        chunk, path, features = element
        c = self.config
        with atomic_path(self.spill_dir / (chunk.key + FRAMES_SUFFIX)) as tmp:
            tmp.write_text(json.dumps(feature_row(chunk, path, features, c.frame_rate)))
        examples = split_chunk(features, c.sample_rate, c.frame_rate, c.example_secs, c.hop_secs, c.centered)
        records = [serialize(example) for example in examples]
        with atomic_path(self.spill_dir / chunk.key) as tmp:
            tmp.write_bytes(b"".join(records))
        offset = 0
        for i, record in enumerate(records):
            key = example_key(chunk.key, i)
            yield (chunk.split, shard_of(key, self.shards[chunk.split])), (key, chunk.key, offset, len(record))
            offset += len(record)


def feature_row(chunk: Chunk, path: str, features: dict, frame_rate: int) -> dict:
    n = len(features["f0_hz"])
    return {
        "path": path, "source_sha256": chunk.source_sha256, "chunk": chunk.index, "split": chunk.split,
        "time_s": (chunk.start_s + np.arange(n) / frame_rate).tolist(),
        **{k: features[k].tolist() for k in FRAME_KEYS},
    }


class WriteShard(beam.DoFn):
    """((split, shard), [(key, spill, offset, length)]) -> one TFRecord file, examples sorted
    by key, written under a temporary name and renamed when complete."""

    def __init__(self, out_dir: str, spill_name: str, shards: dict[str, int]):
        self.out_dir, self.spill_name, self.shards = out_dir, spill_name, shards

    def process(self, element):
        (split, shard), examples = element
        examples = sorted(examples)
        out_dir = location(self.out_dir)
        spill_dir = out_dir / self.spill_name

        def records():
            for _, spill, offset, length in examples:
                yield read_range(spill_dir / spill, offset, length)

        with atomic_path(out_dir / shard_name(split, shard, self.shards[split])) as tmp:
            write_records(tmp, records())
        yield split, len(examples)


def read_range(path: Path, offset: int, length: int) -> bytes:
    """`length` bytes of a file from `offset`; of a bucket's object, those bytes only (a file
    object there would read ahead a whole block for every record)."""
    if is_remote(path):
        return path.fs.cat_file(path.path, start=offset, end=offset + length)
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(length)


@contextmanager
def chunk_progress(spill_dir: Path, chunks: int, audio_s: float, every_s: float = 2.0) -> Iterator[None]:
    """Logs chunks done of the total, the rate in audio seconds per second and the time
    left, as the chunks' spill files appear: the workers (of any runner) are elsewhere,
    the spill folder is what this process sees of them."""
    stop = threading.Event()

    def watch() -> None:
        start, reported, stopped = time.monotonic(), 0, False
        while not stopped:
            stopped = stop.wait(every_s)  # one last look once the pipeline is done
            done = sum(1 for _ in spill_dir.glob(f"*{FRAMES_SUFFIX}"))
            if done == reported:
                continue
            reported, elapsed = done, time.monotonic() - start
            seconds = audio_s * done / chunks
            rate = seconds / elapsed
            left = (audio_s - seconds) / rate if rate else float("inf")
            log.info("features: %d/%d chunks, %.0f/%.0f s of audio, %.2fx real time, %s left", done, chunks,
                     seconds, audio_s, rate, clock(left),
                     extra=progress("features", done, chunks, f"{done}/{chunks} chunks, {rate:.2f}x real time, "
                                                              f"{clock(left)} left"))

    # In this thread's copy of the caller's context, a flow's run logger sees its lines too.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(watch,), name="chunk-progress",
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_pipeline(config: DatasetConfig, sources: list[tuple[str, list[Chunk]]], out_dir: Path,
                 audio_s: float) -> list[dict]:
    """Write the shards into `out_dir` (a folder, or a bucket's prefix: the workers read and
    write it themselves); returns the frame-level feature rows per chunk. `audio_s`: the
    chunks' audio in seconds, for the progress lines."""
    shards = {"train": config.train_shards, "eval": config.eval_shards}
    spill_name = spill_folder(out_dir)
    spill_dir = out_dir / spill_name
    if not is_remote(spill_dir):
        spill_dir.mkdir(exist_ok=True)
    chunks = sum(len(c) for _, c in sources)
    with chunk_progress(spill_dir, chunks, audio_s), beam.Pipeline(options=pipeline_options(config)) as pipeline:
        _ = (
            pipeline
            | "chunks" >> beam.Create([(path, chunk) for path, chunks in sources for chunk in chunks])
            | "reshuffle_chunks" >> beam.Reshuffle()
            | "features" >> beam.ParDo(ComputeFeatures(config))
            | "spill" >> beam.ParDo(SpillChunk(config, str(spill_dir), shards))
            | "group_shards" >> beam.GroupByKey()
            | "write_shards" >> beam.ParDo(WriteShard(str(out_dir), spill_name, shards))
        )
    rows = [json.loads(p.read_text()) for p in spill_dir.glob(f"*{FRAMES_SUFFIX}")]
    remove_tree(spill_dir)
    for split, n in shards.items():  # a shard that drew no example is still written, empty
        for i in range(n):
            path = out_dir / shard_name(split, i, n)
            if not path.exists():
                path.write_bytes(b"")
    return sorted(rows, key=lambda r: (r["path"], r["chunk"]))


def spill_folder(out_dir: Path) -> str:
    """Where this run's chunks spill. In a bucket, a folder of the run's own: two machines
    preparing one version at once never read each other's (possibly unfinished) spills."""
    return f"{SPILL_DIR}-{uuid.uuid4().hex[:12]}" if is_remote(out_dir) else SPILL_DIR
