"""Preparing one dataset: scan sources, version by content, build, publish.

A dataset is built in `<root>/<name>/<version>.partial/` and renamed to
`<root>/<name>/<version>/` when complete, so a published folder is always whole. Each
stage's outputs are written atomically and reused when a killed run is started again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from importlib.metadata import version
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from ..atomic import atomic_path
from ..config import POWER_FRAME_SIZE, DatasetConfig, find_audio
from ..constants import DB_RANGE
from ..locations import is_remote
from ..spectrum import LOUDNESS_N_FFT
from ..store.artifacts import CrepeMeta, DatasetMeta, FileDigest, PitchMeta, RecordsSummary, Splits
from ..store.cache import fetch, records_copy
from ..store.datasets import DatasetFiles, DatasetLayout
from ..store.tables import read_rows
from .audio import SourceFile, inspect_source
from .features_table import write_features
from .records import SPLITS, Chunk, assign_splits, chunk_starts, file_pattern
from .tfrecord import count_records, digest_records

log = logging.getLogger("nas.prepare")
RECORDS_FORMAT = 5  # bump when the meaning of the records changes for the same inputs
# (3: silence skips CREPE; 4: resampled silence is zeros, nas.resample.DUST; 5: power_db)


def scan_sources(config: DatasetConfig, base: Path, quiet: bool = False) -> list[SourceFile]:
    """Every audio file the config finds, inspected and hashed; `quiet` logs the usable
    ones at debug level (skipped ones are always warned of)."""
    paths = find_audio(config, base)
    sources = []
    first_of: dict[str, str] = {}
    for i, path in enumerate(paths, 1):
        source = inspect_source(path, config.example_secs)
        if source.status == "ok" and source.sha256 in first_of:  # a copy would leak across the split
            source.status, source.reason = "skipped", f"same content as {first_of[source.sha256]}"
        if source.status == "ok":
            first_of[source.sha256] = path.name
            log.log(logging.DEBUG if quiet else logging.INFO, "[%d/%d] %s: %.1f s, %d Hz, %d ch%s", i, len(paths),
                    path.name, source.duration_s, source.original_rate, source.channels,
                    f" ({', '.join(source.flags)})" if source.flags else "")
        else:
            log.warning("[%d/%d] skipped %s: %s", i, len(paths), path, source.reason)
        sources.append(source)
    return sources


def dataset_version(config: DatasetConfig, sources: list[SourceFile]) -> str:
    """Hash of the usable sources' bytes and the preparation parameters."""
    usable = sorted(s.sha256 for s in sources if s.status == "ok")
    payload = json.dumps({"format": RECORDS_FORMAT, "parameters": config.parameters(), "sources": usable},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def plan_chunks(config: DatasetConfig, sources: list[SourceFile]) -> list[tuple[str, list[Chunk]]]:
    """(path, chunks) per usable source, with the content-keyed train/eval split."""
    candidates = []
    for s in sources:
        if s.status != "ok":
            continue
        candidates += [(s.sha256, i, start) for i, start in
                       enumerate(chunk_starts(s.duration_s, config.chunk_secs, config.example_secs))]
    chunks = assign_splits(candidates, config.eval_fraction)
    by_source: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_source.setdefault(chunk.source_sha256, []).append(chunk)
    return [(s.path, by_source.pop(s.sha256)) for s in sources
            if s.status == "ok" and s.sha256 in by_source]


def write_manifest(sources: list[SourceFile], path: Path) -> None:
    table = pa.Table.from_pylist([s.row() for s in sources])
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_manifest(dataset_dir: Path) -> list[SourceFile]:
    """The sources as published, with the flags found after feature extraction."""
    rows = read_rows(DatasetFiles(dataset_dir).manifest)
    return [SourceFile(**{**row, "flags": row["flags"].split(",") if row["flags"] else []}) for row in rows]


def build_records(config: DatasetConfig, sources: list[SourceFile], layout: DatasetLayout) -> RecordsSummary:
    """Run the Beam pipeline into the staging folder (reused if already complete there)."""
    from .beam_pipeline import SPILL_DIR, run_pipeline  # Beam takes seconds to import; scans don't need it

    staging = layout.staging
    done = layout.staged.records_done
    if done.exists():
        log.info("records already built in %s", staging)
        return RecordsSummary.load(done)
    if not is_remote(staging):
        # In a bucket nothing is removed: a racing run may have published these very shards
        # (with the same bytes); every shard is overwritten whole, and no temporary name is left.
        staging.mkdir(parents=True, exist_ok=True)
        for stale in [*staging.glob("*.tfrecord-*"), *staging.glob(".*.tmp")]:
            stale.unlink()  # left by a run that was killed before it finished
        shutil.rmtree(staging / SPILL_DIR, ignore_errors=True)
    plan = plan_chunks(config, sources)
    n_chunks = sum(len(c) for _, c in plan)
    log.info("preparing %d chunks from %d files with %s", n_chunks, len(plan),
             pitch_meta(config).describe(crepe_meta(config)))
    durations = {s.path: s.duration_s for s in sources}
    audio_s = sum(min(config.chunk_secs, durations[path] - c.start_s) for path, cs in plan for c in cs)
    rows = run_pipeline(config, plan, staging, audio_s)
    features = features_copy(layout)
    write_features(rows, features)
    chunks = Splits(**{s: sum(c.split == s for _, cs in plan for c in cs) for s in SPLITS})
    if is_remote(staging):
        staging.fs.put_file(str(features), layout.staged.features.path)
        counts, shards = shard_digests(layout)
        summary = RecordsSummary(counts=Splits(**counts), chunks=chunks, shards=shards)
    else:
        summary = RecordsSummary(counts=Splits(**count_examples(staging)), chunks=chunks)
    summary.save(done)
    return summary


def features_copy(layout: DatasetLayout) -> Path:
    """Where this machine writes features.parquet while it builds a version: the staging
    folder, or for a bucket the version's local copy (uploaded, and read there after)."""
    if not is_remote(layout.staging):
        return layout.staged.features
    copy = records_copy(layout.name, layout.version) / layout.staged.features.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    return copy


def local_features(layout: DatasetLayout) -> Path:
    """features.parquet to read on this machine; a bucket's fetched once if it was built elsewhere."""
    copy = features_copy(layout)
    if copy != layout.staged.features and not copy.exists():
        fetch(layout.staged.features, copy)
    return copy


def count_examples(dataset_dir: Path) -> dict[str, int]:
    """Examples per split, as written (record headers only: no TensorFlow)."""
    return {split: sum(count_records(p) for p in dataset_dir.glob(file_pattern(split))) for split in SPLITS}


def shard_digests(layout: DatasetLayout) -> tuple[dict[str, int], dict[str, FileDigest]]:
    """(examples per split, each shard's size and sha256) of a version in a bucket, from the
    one download that also stages each shard on this machine (the statistics read it there,
    and training here finds it)."""
    counts, digests = dict.fromkeys(SPLITS, 0), {}
    for split in SPLITS:
        for path in layout.staging.glob(file_pattern(split)):
            copy = records_copy(layout.name, layout.version) / path.name
            fetch(path, copy)
            records, size, sha256 = digest_records(copy)
            counts[split] += records
            digests[path.name] = FileDigest(bytes=size, sha256=sha256)
    return counts, digests


def pitch_meta(config: DatasetConfig) -> PitchMeta:
    if config.pitch.method == "swiftf0":
        from importlib.metadata import version

        return PitchMeta(method="swiftf0", implementation=f"swift-f0 {version('swift-f0')}")
    return PitchMeta()


def crepe_meta(config: DatasetConfig) -> CrepeMeta:
    return CrepeMeta(model=config.crepe.capacity, viterbi=config.crepe.viterbi)


def metadata(config: DatasetConfig, layout: DatasetLayout, sources: list[SourceFile],
             summary: RecordsSummary) -> DatasetMeta:
    usable = sorted(s.sha256 for s in sources if s.status == "ok")
    return DatasetMeta(
        name=config.name,
        version=layout.version,
        sample_rate=config.sample_rate,
        frame_rate=config.frame_rate,
        centered=config.centered,
        example_secs=config.example_secs,
        hop_secs=config.hop_secs,
        chunk_secs=config.chunk_secs,
        crepe=crepe_meta(config),
        pitch=pitch_meta(config),
        loudness={"n_fft": LOUDNESS_N_FFT, "range_db": DB_RANGE,
                  "definition": "ddsp.spectral_ops.compute_loudness",
                  "implementation": "nas.data.loudness.compute_loudness"},
        power={"frame_size": POWER_FRAME_SIZE, "range_db": DB_RANGE, "definition": "ddsp.spectral_ops.compute_power",
               "implementation": "nas.data.power.compute_power"},
        split={"rule": "chunks ranked by sha256(source sha256:chunk index); the lowest "
                       "ceil(eval_fraction * n_chunks) are eval", "eval_fraction": config.eval_fraction},
        chunks=summary.chunks,
        counts=summary.counts,
        shards={"train": config.train_shards, "eval": config.eval_shards},
        files={"train": file_pattern("train"), "eval": file_pattern("eval")},
        sources={"ok": sum(s.status == "ok" for s in sources), "skipped": sum(s.status != "ok" for s in sources)},
        source_manifest_digest=hashlib.sha256("\n".join(usable).encode()).hexdigest(),
        parameters=config.parameters(),
        nas_version=__version__,
        # the installed versions, read without importing the packages
        software={name: version(name) for name in ("tensorflow", "ddsp", "apache_beam")},
    )


def publish(layout: DatasetLayout, meta: DatasetMeta, summary: RecordsSummary) -> Path:
    """Write dataset.json last and rename the staging folder into place; in a bucket, write
    it last and conditionally (the version's folder is its staging folder)."""
    if is_remote(layout.root):
        statistics = layout.staged.statistics.read_bytes()
        objects = {**summary.shards, layout.staged.statistics.name: FileDigest(
            bytes=len(statistics), sha256=hashlib.sha256(statistics).hexdigest())}
        if not meta.model_copy(update={"objects": objects}).publish(layout.staged.metadata):
            log.info("another run published %s version %s first", layout.name, layout.version)
        layout.staged.records_done.unlink(missing_ok=True)
        return layout.final
    layout.staged.records_done.unlink(missing_ok=True)
    meta.save(layout.staged.metadata)
    if layout.final.exists():  # another run published the same content first
        shutil.rmtree(layout.staging)
    else:
        os.replace(layout.staging, layout.final)
    return layout.final
