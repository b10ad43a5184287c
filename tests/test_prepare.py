"""The data half end to end on real audio: records that ddsp reads, versions, statistics."""

import json
import pickle
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

from nas import ddsp_api
from nas.config import load_config
from nas.data.audio import read_mono
from nas.data.dataset import dataset_version, scan_sources
from nas.data.power import compute_power
from nas.data.prepare import prepare_dataset
from nas.data.reader import read_split, record_provider
from nas.resample import resample
from nas.store.datasets import DatasetFiles, DatasetLayout, load_metadata
from tests.conftest import write_config


def test_manifest_lists_every_file_with_status(prepared):
    dataset_dir, *_ = prepared
    manifest = pq.read_table(dataset_dir / "manifest.parquet").to_pandas().set_index("path")
    by_name = {p.rsplit("/", 1)[-1]: row for p, row in manifest.iterrows()}
    assert set(by_name) == {"a-mono-32k.flac", "b-stereo-44k-24bit.wav", "c-vorbis.ogg",
                            "d-not-audio.wav", "e-too-short.wav"}
    assert by_name["b-stereo-44k-24bit.wav"].channels == 2
    assert by_name["b-stereo-44k-24bit.wav"].original_rate == 44100
    assert by_name["d-not-audio.wav"].status == "skipped"
    assert "cannot decode" in by_name["d-not-audio.wav"].reason
    assert "shorter than one example" in by_name["e-too-short.wav"].reason
    meta = json.loads((dataset_dir / "dataset.json").read_text())
    assert meta["sources"] == {"ok": 3, "skipped": 2}


def test_ddsp_reads_the_records_with_dataset_json(prepared):
    dataset_dir, config, base, _ = prepared
    meta = json.loads((dataset_dir / "dataset.json").read_text())
    # 14 s -> chunks of 8 + 6 s; 12 s -> 8 + 4; 10 s -> 8 (2 s tail dropped); windows of 4 s, hop 2
    assert sum(meta["chunks"].values()) == 5 and meta["chunks"]["eval"] == 2  # ceil(0.25 * 5)
    assert sum(meta["counts"].values()) == 3 + 2 + 3 + 1 + 3
    for split in ("train", "eval"):
        batches = list(record_provider(dataset_dir, split, load_metadata(dataset_dir)).get_dataset(shuffle=False))
        assert len(batches) == meta["counts"][split]
        for ex in batches:
            assert ex["audio"].shape == (64000,) and ex["audio_16k"].shape == (64000,)
            for k in ("f0_hz", "f0_confidence", "loudness_db", "power_db"):
                assert ex[k].shape == (201,)
            assert np.all(np.isfinite(ex["loudness_db"])) and -80.5 <= float(tf.reduce_min(ex["loudness_db"]))
            # power as the plugin computes it (tests/test_ddsp_vst.py), of the chunk: away from the
            # example's edges, where the chunk's neighbouring audio enters, it is the example's own
            inner = slice(2, -2)
            assert np.allclose(ex["power_db"][inner], compute_power(ex["audio_16k"].numpy(), 50)[inner], atol=1e-3)
    # values: every train example is a window of a source, resampled, at a whole-second offset
    sources = {p.name: resample(*read_mono(p)[:2], 16000) for p in (base / "audio").glob("[abc]-*")}
    example = next(iter(record_provider(dataset_dir, "train", load_metadata(dataset_dir)).get_dataset(shuffle=False)))
    audio = example["audio"].numpy()
    hits = [name for name, s in sources.items() for start in range(0, len(s) - 64000 + 1, 16000)
            if np.allclose(s[start:start + 64000], audio, atol=1e-6)]
    assert len(hits) == 1
    violin_range = (example["f0_confidence"].numpy() > 0.8)
    assert violin_range.any() and np.all((example["f0_hz"].numpy()[violin_range] > 150))


def test_records_read_without_tensorflow_are_ddsps_in_ddsps_order(prepared):
    dataset_dir, *_ = prepared
    for split in ("train", "eval"):  # two train shards: ddsp interleaves them record by record
        theirs = list(record_provider(dataset_dir, split, load_metadata(dataset_dir)).get_dataset(shuffle=False))
        ours = list(read_split(dataset_dir, split))
        assert len(ours) == len(theirs) > 0
        for a, b in zip(ours, theirs):
            assert set(a) == set(b)
            for k in b:
                np.testing.assert_array_equal(a[k], b[k].numpy())


def test_statistics_are_ddsps(prepared):
    dataset_dir, *_ = prepared
    stats = json.loads((dataset_dir / "statistics.json").read_text())
    for key in ("mean_pitch", "std_pitch", "mean_loudness_note", "mean_max_power", "mean_min_loudness"):
        assert np.isfinite(stats[key])
    assert 55 < stats["mean_pitch_note"] < 90  # the demo plays G3..E6
    assert len(stats["loudness_quantiles"]["quantiles"]) > 10
    with open(dataset_dir / "dataset_statistics.pkl", "rb") as f:
        pickled = pickle.load(f)
    assert pickled["mean_pitch"] == stats["mean_pitch"]
    assert hasattr(pickled["quantile_transform"], "transform")

    # our streamed statistics are ddsp's compute_dataset_statistics, which holds all audio
    postprocessing = ddsp_api.postprocessing()
    np.random.seed(0)
    theirs = postprocessing.compute_dataset_statistics(
        record_provider(dataset_dir, "train", load_metadata(dataset_dir)), batch_size=1)
    assert set(theirs) == set(pickled)
    for key, value in theirs.items():
        if key != "quantile_transform":
            assert pickled[key] == pytest.approx(float(value), rel=1e-5, abs=1e-4), key
    np.testing.assert_allclose(pickled["quantile_transform"].quantiles_, theirs["quantile_transform"].quantiles_,
                               atol=1e-4)
    features = pq.read_table(dataset_dir / "features.parquet").to_pandas()
    assert set(features.split) == {"train", "eval"} and features.path.nunique() == 3
    assert (dataset_dir / "distributions.png").stat().st_size > 10_000


def test_unchanged_config_does_no_work_and_records_are_byte_identical(prepared, tmp_path):
    dataset_dir, config, base, root = prepared
    mtimes = {p.name: p.stat().st_mtime_ns for p in dataset_dir.iterdir()}
    assert prepare_dataset(config, base, root) == dataset_dir
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in dataset_dir.iterdir()}

    # A killed run leaves a staging folder; the next run cleans it and rebuilds identically.
    other_root = tmp_path / "again"
    sources = scan_sources(config, base)
    layout = DatasetLayout(other_root, config.name, dataset_version(config, sources))
    layout.staging.mkdir(parents=True)
    (layout.staging / "train.tfrecord-00000-of-00002").write_bytes(b"half-written")
    again = prepare_dataset(config, base, other_root)
    assert again.name == dataset_dir.name and not layout.staging.exists()
    assert not DatasetFiles(again).records_done.exists()
    for record in sorted(dataset_dir.glob("*.tfrecord-*")):
        assert (again / record.name).read_bytes() == record.read_bytes(), record.name


def test_changing_a_parameter_makes_a_new_version(small_sources, prepared, tmp_path):
    dataset_dir, config, base, _ = prepared
    changed, _ = load_config(write_config(small_sources / "changed.yaml", hop_secs=1.0))
    assert dataset_version(changed, scan_sources(changed, base)) != dataset_dir.name
    copy = tmp_path / "copy"
    shutil.copytree(base / "audio", copy / "audio")
    moved, moved_base = load_config(write_config(copy / "moved.yaml"))
    assert dataset_version(moved, scan_sources(moved, moved_base)) == dataset_dir.name
