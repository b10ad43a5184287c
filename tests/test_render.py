"""`nas render`: MIDI and feature frames played by a trained model, offline and streamed."""

import ctypes.util
import json

import numpy as np
import pytest
import soundfile as sf

from flows.cli.main import main
from nas.play.controls import ControlsError, midi_controls
from nas.store.artifacts import DatasetStatistics
from nas.store.datasets import load_statistics
from tests.conftest import DEMO_MODELS

NOTES = [(69, 110, 0.0, 0.5), (72, 40, 0.5, 1.0), (76, 110, 1.0, 1.5)]  # pitch, velocity, start, end (s)


def _midi(path, notes=NOTES, bend=None):
    import mido

    song = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    song.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000))  # 120 bpm: 960 ticks a second
    events = sorted([(start, "note_on", p, v) for p, v, start, _ in notes] +
                    [(end, "note_off", p, 0) for p, _, _, end in notes], key=lambda e: (e[0], e[1] == "note_on"))
    if bend is not None:
        events.insert(0, (0.0, "pitchwheel", bend, 0))
    now = 0.0
    for time, kind, value, velocity in events:
        delta = round((time - now) * 960)
        now = time
        if kind == "pitchwheel":
            track.append(mido.Message("pitchwheel", pitch=value, time=delta))
        else:
            track.append(mido.Message(kind, note=value, velocity=velocity, time=delta))
    song.save(str(path))
    return path


def _render(run, midi, out, *flags) -> np.ndarray:
    assert main(["render", str(run), "--midi", str(midi), "-o", str(out), *map(str, flags)]) == 0
    return sf.read(out, dtype="float32")[0]


@pytest.mark.parametrize("rate, blocks, tolerance", [(16000, [32, 1000], 1e-5), (48000, [128, 4096], 1e-4)])
def test_the_same_midi_gives_the_same_file_offline_and_streamed(demo_run, tmp_path, rate, blocks, tolerance):
    """`nas render` and `nas render --block N` of one MIDI file, each engine with the model's
    own noise: one sound within 1e-5 of peak at the model's rate, and within 1e-4 at 48 kHz,
    where the streamed blocks are converted as they come and the offline clip at once."""
    midi = _midi(tmp_path / "notes.mid")
    offline = _render(demo_run, midi, tmp_path / "offline.wav", "--rate", rate)
    assert sf.info(tmp_path / "offline.wav").samplerate == rate and abs(len(offline) / rate - 1.85) < 0.02
    for block in blocks:
        streamed = _render(demo_run, midi, tmp_path / f"{block}.wav", "--rate", rate, "--block", block)
        assert len(streamed) == len(offline)
        assert np.abs(streamed - offline).max() <= tolerance * np.abs(offline).max(), block
    if rate != 16000:  # the notes, at their pitch, at the new rate
        for pitch, _, start, end in NOTES:
            f0, _ = _pitch_and_level(offline, rate, start, end)
            assert abs(1200 * np.log2(f0 / (440 * 2 ** ((pitch - 69) / 12)))) < 25, (pitch, f0)


def _pitch_and_level(audio, rate, start, end):
    """Median f0 (YIN) and RMS dB of the middle of a note."""
    import librosa

    middle = audio[int((start + 0.15) * rate):int((end - 0.1) * rate)]
    f0 = librosa.yin(middle, fmin=150, fmax=1200, sr=rate, frame_length=1024 * rate // 16000,
                     hop_length=160 * rate // 16000)
    return float(np.median(f0)), float(10 * np.log10(np.mean(middle ** 2)))


@pytest.mark.parametrize("block", [None, 128])
def test_midi_plays_the_notes_at_their_velocities(demo_run, tmp_path, block):
    out = tmp_path / "notes.wav"
    args = ["render", str(demo_run), "--midi", str(_midi(tmp_path / "notes.mid")), "-o", str(out)]
    assert main(args + (["--block", str(block)] if block else [])) == 0
    audio, rate = sf.read(out, dtype="float32")
    assert abs(len(audio) / rate - 1.85) < 0.02  # the last note's end, its release and 0.1 s
    levels = []
    for pitch, _, start, end in NOTES:
        f0, level = _pitch_and_level(audio, rate, start, end)
        assert abs(1200 * np.log2(f0 / (440 * 2 ** ((pitch - 69) / 12)))) < 25, (pitch, f0)
        levels.append(level)
    assert levels[1] < levels[0] - 3 and levels[1] < levels[2] - 3  # velocity 40 against 110


def test_midi_controls_follow_bends_and_the_dataset_s_loudness(tmp_path):
    statistics = DatasetStatistics.from_flat(json.loads((DEMO_MODELS / "statistics.json").read_text()))
    bent = midi_controls(_midi(tmp_path / "bent.mid", bend=4096), 250, statistics)  # half of +2 semitones
    plain = midi_controls(_midi(tmp_path / "plain.mid"), 250, statistics)
    assert np.allclose(1200 * np.log2(bent.f0_hz / plain.f0_hz), 100, atol=0.1)
    loud = plain.level_db[int(0.3 * 250)]  # the first note, velocity 110, after its attack
    note_loudness = np.asarray(statistics.loudness_quantiles.quantiles)
    assert note_loudness.min() <= loud <= note_loudness.max()  # where the dataset's notes are
    assert plain.level_db[-1] < loud - 20  # released to the dataset's silence


def test_features_render_and_bad_files_are_named(demo_run, prepared, tmp_path, capsys):
    t = np.arange(200) / 50
    frames = tmp_path / "line.npz"
    np.savez(frames, f0_hz=330 * 2 ** (t / 4), loudness_db=np.full(200, -30.0), frame_rate=50)
    out = tmp_path / "line.wav"
    assert main(["render", str(demo_run), "--features", str(frames), "-o", str(out), "--block", "4096"]) == 0
    assert abs(sf.info(out).duration - 3.984) < 0.01
    parquet = prepared[0] / "features.parquet"
    assert main(["render", str(demo_run), "--features", str(parquet), "-o", str(out)]) == 0
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd not really")
    assert main(["render", str(demo_run), "--midi", str(broken), "-o", str(out)]) == 2
    assert f"nas: {broken}: not a readable MIDI file" in capsys.readouterr().err
    with pytest.raises(ControlsError, match="no notes"):
        midi_controls(_midi(tmp_path / "empty.mid", notes=[]), 250, load_statistics(demo_run.parent.parent / "dataset"))


def _bad_controls(path, kind):
    """A control file of one kind of bad (or odd) input, named for it."""
    if kind == "empty MIDI":
        path.write_bytes(b"")
    elif kind == "truncated MIDI":
        path.write_bytes(_midi(path).read_bytes()[:40])
    elif kind in ("drums only", "0-length notes"):
        import mido

        channel, length = (9, 480) if kind == "drums only" else (0, 0)
        song = mido.MidiFile(ticks_per_beat=480)
        song.tracks.append(mido.MidiTrack([mido.Message("note_on", note=69, velocity=100, channel=channel),
                                           mido.Message("note_off", note=69, channel=channel, time=length)]))
        song.save(str(path))
    else:
        f0, frame_rate = {"NaN f0": ([np.nan, 440, 440], 250), "negative f0": ([-440, 440, 440], 250),
                          "frame rate 0": ([440, 440, 440], 0)}[kind]
        np.savez(path, f0_hz=np.array(f0, np.float32), loudness_db=np.full(3, -20, np.float32),
                 frame_rate=np.array(frame_rate))
    return path


@pytest.mark.parametrize("kind, suffix, says", [
    ("empty MIDI", ".mid", "not a readable MIDI file (EOFError)"),
    ("truncated MIDI", ".mid", "not a readable MIDI file"),
    ("drums only", ".mid", "only drums (channel 10), no pitched notes to play"),
    ("0-length notes", ".mid", "every note ends where it starts (0 s long): nothing to play"),
    ("NaN f0", ".npz", "f0 or loudness frames that are not numbers (NaN or infinite)"),
    ("negative f0", ".npz", "negative f0 (at frame 0); f0 is in Hz, 0 where unvoiced"),
    ("frame rate 0", ".npz", "frame_rate 0: frames a second must be above 0"),
])
def test_bad_control_files_are_refused_with_their_reason(demo_run, tmp_path, capsys, kind, suffix, says):
    """Each kind: exit 2, the file and the reason, nothing written (issue 38's corpus of the
    new surfaces; the troubleshooting guide's table)."""
    path = _bad_controls(tmp_path / f"bad{suffix}", kind)
    flag = "--midi" if suffix == ".mid" else "--features"
    out = tmp_path / "out.wav"
    assert main(["render", str(demo_run), flag, str(path), "-o", str(out)]) == 2
    assert f"nas: {path}: {says}" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("command, says", [
    (["render", "{run}", "--midi", "{midi}", "--block", "8"], "--block 8: blocks are 32 to 4096 samples"),
    (["render", "{run}", "--midi", "{midi}", "--rate", "7000"], "7000 Hz: nas plays at 8000 to 192000 Hz"),
    pytest.param(["play", "{run}", "--input-file", "{midi}", "--output-device", "999"], "no output device 999",
                 marks=pytest.mark.skipif(not ctypes.util.find_library("portaudio"),
                                          reason="no PortAudio here (Debian's libportaudio2): no devices to ask")),
])
def test_blocks_rates_and_devices_out_of_range_are_refused(demo_run, tmp_path, capsys, command, says):
    midi = _midi(tmp_path / "notes.mid")
    args = [part.format(run=demo_run, midi=midi) for part in command]
    assert main([*args, "-o", str(tmp_path / "out.wav")] if args[0] == "render" else args) == 2
    assert says in capsys.readouterr().err


def test_notes_the_model_never_heard_play_with_a_warning(demo_run, tmp_path, caplog):
    """MIDI 0 and 127 on a violin model: played, and named as outside the dataset's notes."""
    out = tmp_path / "out.wav"
    midi = _midi(tmp_path / "far.mid", notes=[(127, 100, 0.0, 0.5), (69, 100, 0.5, 1.0), (0, 100, 1.0, 1.5)])
    assert main(["render", str(demo_run), "--midi", str(midi), "-o", str(out)]) == 0
    assert "2 of its 3 notes lie outside the notes the model learnt (MIDI 55 to 89): 0, 127" in caplog.text
    assert out.exists()


def test_a_run_still_training_says_what_is_missing_and_what_to_do(demo_run, tmp_path, capsys):
    import shutil

    unfinished = tmp_path / "runs" / "unfinished"
    shutil.copytree(demo_run, unfinished)
    shutil.rmtree(unfinished / "model")  # training writes model/ whole when it finishes
    assert main(["render", str(unfinished), "--midi", str(_midi(tmp_path / "n.mid")), "-o", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert f"nas: {unfinished}: no trained model yet" in err and "nas train" in err and "Errno" not in err
    assert not (tmp_path / "x.wav").exists()


def test_a_model_of_before_norm_frame_renders_offline_and_says_why_it_cannot_stream(old_demo_run, tmp_path, capsys):
    notes, out = _midi(tmp_path / "notes.mid"), tmp_path / "old.wav"
    assert main(["render", str(old_demo_run), "--midi", str(notes), "-o", str(out)]) == 0
    assert np.abs(sf.read(out, dtype="float32")[0]).max() > 1e-3
    assert main(["render", str(old_demo_run), "--midi", str(notes), "-o", str(out), "--block", "128"]) == 2
    err = capsys.readouterr().err
    assert "this model cannot stream" in err and "model.norm=frame" in err


def test_a_clip_too_long_to_render_at_once_is_streamed_and_sounds_the_same(demo_run, old_demo_run, tmp_path,
                                                                          monkeypatch, capsys):
    """Past LONGEST_OFFLINE_S (2 minutes) an offline render streams a second a call, holding
    only its audio: a 2-hour MIDI file renders (1:52 and 5.3 GB at 48 kHz; the troubleshooting
    guide). Here the limit is 4 s: the streamed clip has the offline clip's length and
    loudness. A model that cannot stream refuses a clip that long, saying why."""
    from nas.play import render as rendering

    midi = _midi(tmp_path / "long.mid", notes=[(60 + 2 * i, 90, i * 1.0, i * 1.0 + 0.8) for i in range(8)])
    offline, streamed = tmp_path / "offline.wav", tmp_path / "streamed.wav"
    assert main(["render", str(demo_run), "--midi", str(midi), "-o", str(offline), "--rate", "48000"]) == 0
    monkeypatch.setattr(rendering, "LONGEST_OFFLINE_S", 4.0)
    assert main(["render", str(demo_run), "--midi", str(midi), "-o", str(streamed), "--rate", "48000"]) == 0
    assert "streamed a second a call (longer than 4 s)" in capsys.readouterr().out
    (a, rate), (b, _) = sf.read(offline, dtype="float32"), sf.read(streamed, dtype="float32")
    assert rate == 48000 and len(a) == len(b)
    window = rate // 10
    level = [20 * np.log10(np.sqrt(np.mean(x[:len(x) // window * window].reshape(-1, window) ** 2, axis=1)) + 1e-6)
             for x in (a, b)]
    assert np.corrcoef(*level)[0, 1] > 0.95 and np.median(np.abs(level[0] - level[1])) < 1.0  # dB
    assert main(["render", str(old_demo_run), "--midi", str(midi), "-o", str(tmp_path / "old.wav")]) == 2
    assert (f"nas: {midi}: 0.1 minutes, longer than the 4 s this model renders at once, and this model cannot "
            "stream") in capsys.readouterr().err
