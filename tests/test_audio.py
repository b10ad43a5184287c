"""Ingestion: real files of many kinds, and bad ones skipped with a reason."""

import os

import numpy as np
import soundfile as sf
import soxr

from nas.data.audio import inspect_source, read_mono, read_segment
from nas.resample import resample
from tests.conftest import demo_audio


def _write(path, audio, rate, **kw):
    sf.write(path, audio, rate, **kw)
    return path


def test_good_files_are_decoded_downmixed_and_hashed(tmp_path):
    a, rate = demo_audio()
    clip = a[: 5 * rate]
    stereo = _write(tmp_path / "s.wav", np.stack([clip, clip], 1), rate, subtype="PCM_24")
    source = inspect_source(stereo, min_seconds=4)
    assert source.status == "ok", source.reason
    assert (source.channels, source.original_rate) == (2, rate)
    assert abs(source.duration_s - 5) < 1e-6 and len(source.sha256) == 64
    mono, _, _ = read_mono(stereo)
    np.testing.assert_allclose(mono, clip, atol=1e-6)  # 24-bit keeps the 16-bit demo exact


def test_resampling_keeps_the_signal(tmp_path):
    a, rate = demo_audio()
    x = a[: 3 * rate]
    there_and_back = resample(resample(x, rate, 16000), 16000, rate)
    # the demo is band-limited below 8 kHz only loosely: compare the band both rates keep
    spectrum = np.abs(np.fft.rfft(x))[: len(x) // 4]
    back = np.abs(np.fft.rfft(there_and_back[: len(x)]))[: len(x) // 4]
    assert np.corrcoef(spectrum, back)[0, 1] > 0.99
    assert len(resample(x, rate, 16000)) == 3 * 16000


def test_resampled_silence_stays_silent():
    """Digital silence between notes comes out as zeros, not as the filter's tails (values
    of 1e-16 to 1e-7, whose bins ddsp's log-magnitude loss counts at 15-25 nats each)."""
    x, rate = demo_audio()
    silent = np.r_[0, (x == 0).astype(np.int8), 0]
    runs = np.flatnonzero(np.diff(silent)).reshape(-1, 2)  # [start, end) of each run of zeros
    rests = [(a, b) for a, b in runs if a > 0 and b - a >= rate // 10]  # 0.1 s or more, after a note
    assert len(rests) >= 2  # 11.75 s and 19.28 s into violin-00
    y, raw = resample(x, rate, 16000), soxr.resample(x, rate, 16000, quality="VHQ")
    for a, _ in rests:
        tail = slice(a * 16000 // rate + 240, a * 16000 // rate + 400)  # 15-25 ms after the note ends
        assert np.any((raw[tail] != 0) & (np.abs(raw[tail]) < 1e-7))  # soxr's tail there: 1e-16 to 1e-15
        assert np.all(y[tail] == 0)
    kept = np.abs(raw) >= 1e-7
    np.testing.assert_array_equal(y[kept], raw[kept].astype(np.float32))  # the signal itself is untouched
    assert kept.mean() > 0.9


def test_bad_inputs_are_skipped_with_reasons(tmp_path):
    a, rate = demo_audio()
    cases = {
        "empty.wav": lambda p: p.write_bytes(b""),
        "text.wav": lambda p: p.write_text("hello, not audio"),
        "random.flac": lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)),
        "silent.wav": lambda p: _write(p, np.zeros(5 * rate, np.float32), rate),
        "nan.wav": lambda p: _write(p, np.full(5 * rate, np.nan, np.float32), rate, subtype="FLOAT"),
        "short.wav": lambda p: _write(p, a[:rate], rate),
        "dir.wav": lambda p: p.mkdir(),
        "dangling.wav": lambda p: os.symlink(tmp_path / "missing-target.wav", p),
    }
    expected = {
        "empty.wav": "empty file", "text.wav": "cannot decode", "random.flac": "cannot decode",
        "silent.wav": "silent", "nan.wav": "NaN", "short.wav": "shorter than one example",
        "dir.wav": "directory", "dangling.wav": "broken symbolic link",
    }
    for name, make in cases.items():
        make(tmp_path / name)
        source = inspect_source(tmp_path / name, min_seconds=4)
        assert source.status == "skipped", name
        assert expected[name] in source.reason, (name, source.reason)


def test_clipping_is_kept_but_flagged(tmp_path):
    a, rate = demo_audio()
    loud = np.clip(a[: 5 * rate] * 20, -1, 1)
    source = inspect_source(_write(tmp_path / "clipped.wav", loud, rate), min_seconds=4)
    assert source.status == "ok" and "clipping" in source.flags


def test_a_segment_read_alone_equals_that_stretch_of_the_whole_file(tmp_path):
    """Preparation reads each chunk on its own (long files stream): with the resampler's
    context around it, a segment is the whole file's resampling at that place."""
    a, rate = demo_audio()
    for name, sr in (("b.wav", 44100), ("c.ogg", rate), ("d.wav", 22050)):
        path = _write(tmp_path / name, soxr.resample(a[: 12 * rate], rate, sr).astype(np.float32), sr)
        whole = resample(read_mono(path)[0], sr, 16000)
        for start, secs in ((0.0, 4.0), (4.0, 4.0), (8.0, 8.0)):  # the last runs past the end
            segment = read_segment(path, start, secs, 16000)
            expected = whole[round(start * 16000): round((start + secs) * 16000)]
            assert len(segment) == len(expected), (name, start)
            assert np.abs(segment - expected).max() < 1e-6, (name, start, np.abs(segment - expected).max())
