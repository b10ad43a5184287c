"""pitch.method: swiftf0 — SwiftF0's f0 on the dataset's frame grid, in records ddsp reads."""

import json
import subprocess
import sys

import numpy as np
import pytest

from nas.config import DatasetConfig, load_config
from nas.data.dataset import dataset_version, scan_sources
from nas.data.features import compute_features, frame_count
from nas.data.prepare import prepare_dataset
from nas.data.reader import record_provider
from nas.pitch import SILENT_PEAK
from nas.resample import resample
from nas.store.datasets import load_metadata
from tests.conftest import write_config

RATE = 16000


def _step_tone(f_before: float, f_after: float, step_s: float, secs: float) -> np.ndarray:
    """A harmonic tone whose pitch steps at `step_s` (phase-continuous)."""
    t = np.arange(int(secs * RATE)) / RATE
    f0 = np.where(t < step_s, f_before, f_after)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    return (0.3 * sum(np.sin(k * phase) / k for k in range(1, 6))).astype(np.float32)


@pytest.mark.parametrize("centered", [True, False])
def test_swiftf0_f0_lands_on_the_datasets_frames(centered):
    audio = _step_tone(220.0, 330.0, step_s=2.0, secs=4.0)
    config = DatasetConfig(name="x", audio=["a"], centered=centered, pitch={"method": "swiftf0"})
    features = compute_features(audio, config)
    n = frame_count(len(audio), 50, centered)
    assert all(len(v) == n for v in features.values())
    f0, confidence = features["f0_hz"], features["f0_confidence"]
    assert f0.dtype == np.float32 and np.all(np.isfinite(f0)) and np.all(f0 > 0)
    assert np.all((confidence >= 0) & (confidence <= 1))
    # frame j's time: j / 50 s, plus CREPE's half frame (32 ms) with `same` padding
    times = np.arange(n) / 50 + (0 if centered else 0.032)
    cents = 1200 * np.log2(f0 / np.where(times < 2.0, 220.0, 330.0))
    away = np.abs(times - 2.0) > 0.03  # the step itself is ambiguous within the tracker's window
    steady = away & (times > 0.1) & (times < 3.9)
    assert np.all(np.abs(cents[steady]) < 20) and np.all(confidence[steady] > 0.5)
    # where the pitch crosses the midpoint (log-frequency) is where the step is: within a frame
    crossing = times[np.argmax(f0 > np.sqrt(220.0 * 330.0))]
    assert abs(crossing - 2.0) <= 0.02, crossing


def test_swiftf0_workers_do_not_import_tensorflow():
    code = ("import sys, numpy as np; from nas.config import DatasetConfig; from nas.data.features import "
            "compute_features; c = DatasetConfig(name='x', audio=['a'], pitch={'method': 'swiftf0'}); "
            "compute_features(np.zeros(16000, np.float32) + 0.1 * np.sin(np.arange(16000) * 0.1), c); "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_pitch_method_is_part_of_the_version(small_sources, prepared):
    dataset_dir, config, base, _ = prepared
    assert config.parameters()["pitch"] == {"method": "crepe"}  # a config with only a `crepe:` block
    swift, _ = load_config(write_config(small_sources / "swift.yaml", pitch={"method": "swiftf0"}))
    assert dataset_version(swift, scan_sources(swift, base)) != dataset_dir.name


def test_swiftf0_records_read_back_through_ddsp(small_sources, prepared, tmp_path):
    crepe_dir, *_ = prepared
    config, base = load_config(write_config(small_sources / "swift.yaml", pitch={"method": "swiftf0"},
                                            beam={"direct_running_mode": "in_memory"}))
    dataset_dir = prepare_dataset(config, base, tmp_path / "data")
    meta = json.loads((dataset_dir / "dataset.json").read_text())
    assert meta["pitch"]["method"] == "swiftf0" and meta["pitch"]["implementation"].startswith("swift-f0 ")
    assert meta["parameters"]["pitch"] == {"method": "swiftf0"}
    assert "SwiftF0" in load_metadata(dataset_dir).describe()
    assert load_metadata(crepe_dir).pitch.method == "crepe"

    def examples(directory):
        provider = record_provider(directory, "train", load_metadata(directory))
        return list(provider.get_dataset(shuffle=False).as_numpy_iterator())

    swift, crepe = examples(dataset_dir), examples(crepe_dir)
    assert len(swift) == len(crepe) == meta["counts"]["train"]
    agree = []
    for s, c in zip(swift, crepe):
        np.testing.assert_array_equal(s["audio"], c["audio"])  # same windows, only the tracker differs
        assert s["f0_hz"].shape == (201,) and np.all(s["f0_hz"] > 0)
        both = (s["f0_confidence"] > 0.85) & (c["f0_confidence"] > 0.85)
        agree.append(np.abs(1200 * np.log2(s["f0_hz"][both] / c["f0_hz"][both])) < 50)
    assert np.mean(np.concatenate(agree)) > 0.95  # two trackers, one violin, on the same frames


def test_swiftf0_skips_silence_and_changes_no_tracked_frame(monkeypatch):
    from nas.pitch import swift
    from tests.conftest import demo_audio

    a, rate = demo_audio("violin-00")
    audio = resample(a[: 8 * rate], rate, RATE)
    whole = swift.detector().detect(audio, RATE)
    pitch, confidence = swift.swift_frames(audio)
    n = len(pitch)
    tracked = np.abs(audio[: n * swift.HOP]).reshape(n, swift.HOP).max(axis=1) >= SILENT_PEAK
    assert 0.05 < np.mean(~tracked) < 0.5
    # the same values, to float32 rounding (ONNX Runtime's kernels round with the input's length)
    np.testing.assert_allclose(pitch[tracked], whole.pitch_hz[tracked], rtol=1e-6)
    np.testing.assert_allclose(confidence[tracked], whole.confidence[tracked], atol=1e-6)
    assert np.all(confidence[~tracked] == 0) and np.all(whole.confidence[~tracked] == 0)  # its own rule too
    assert np.all(np.isfinite(pitch)) and np.all(pitch > 0)

    seen = []
    real = swift.detector()

    class Counting:
        def detect(self, part, rate):
            seen.append(len(part))
            return real.detect(part, rate)

    monkeypatch.setattr(swift, "detector", lambda: Counting())
    swift.swift_frames(audio)
    assert len(seen) >= 2 and sum(seen) < len(audio)  # a rest split the audio; its middle never reached the network


def test_swiftf0_records_are_built_without_tensorflow(small_sources, tmp_path):
    """The whole records stage (Beam in this process): features, spills, shards, counts."""
    config_path = write_config(small_sources / "swift-in-process.yaml", pitch={"method": "swiftf0"},
                               beam={"direct_running_mode": "in_memory"})
    code = f"""
import sys
from pathlib import Path
from nas.config import load_config
from nas.data.dataset import build_records, dataset_version, scan_sources
from nas.store.datasets import DatasetLayout
config, base = load_config({str(config_path)!r})
sources = scan_sources(config, base)
summary = build_records(config, sources, DatasetLayout(Path({str(tmp_path)!r}), config.name,
                                                       dataset_version(config, sources)))
print(summary.counts.train + summary.counts.eval, 'tensorflow' in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-2:] == ["12", "False"]  # 3 + 2 + 3 + 1 + 3 examples (tests/test_prepare.py)


def test_transfer_tracks_with_the_datasets_own_method(prepared, tmp_path, monkeypatch):
    """`nas transfer` on a SwiftF0 dataset's model: SwiftF0's f0 at the control rate, no CREPE."""
    import soundfile as sf

    from nas.play import transfer

    crepe_dir, *_ = prepared
    crepe = load_metadata(crepe_dir)
    metadata = type(crepe).model_validate({**crepe.model_dump(), "pitch": {"method": "swiftf0"}})
    monkeypatch.setattr(transfer, "track_pitch", lambda *a, **k: pytest.fail("CREPE ran for a SwiftF0 dataset"))
    sf.write(tmp_path / "tone.wav", _step_tone(220.0, 330.0, step_s=1.0, secs=2.0), RATE)
    features, rate = transfer.analyse(tmp_path / "tone.wav", RATE, metadata, control_rate=250)
    assert rate == RATE
    f0, times = features.f0_hz, np.arange(len(features.f0_hz)) / 250
    assert len(f0) == 500 and features.notes.mean() > 0.9
    np.testing.assert_allclose(f0[(times > 0.2) & (times < 0.8)], 220.0, rtol=0.01)
    np.testing.assert_allclose(f0[(times > 1.2) & (times < 1.8)], 330.0, rtol=0.01)
