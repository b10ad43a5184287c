"""Neutone FX: `nas play`'s chain as one TorchScript module, run in the export's own
environment (`make neutone-env`: torch 2.11, neutone-sdk 1.5.2) against nas's engines."""

import numpy as np
import pytest

from tests.conftest import DEMO_MODELS, demo_audio, example_controls

BLOCK = 256


@pytest.fixture(scope="module")
def demo_engine():
    from nas.engine.engine import Engine
    from nas.models.weights import engine_weights
    from nas.models.saved import load_model

    model, summary = load_model(DEMO_MODELS / "frame")
    return Engine(summary.model, summary.sample_rate, engine_weights(model), seed=summary.seed), summary


@pytest.fixture(scope="module")
def played(demo_engine, tmp_path_factory):
    """The module scripted in the export's environment, fed the same controls as nas's
    streaming engine (8 frames a call) and 4 s of violin in blocks of 256."""
    from nas.play.neutone import bundle, run_in_environment
    from nas.resample import resample

    engine, summary = demo_engine
    folder = tmp_path_factory.mktemp("neutone")
    bundle(engine, folder / "bundle.npz", "demo-violin", summary.model_version)
    controls = example_controls(frames=2000)  # 8 s: a vibrato line gliding up to where harmonics alias
    audio, rate = demo_audio()
    violin = resample(audio[:4 * rate], rate, 16000)
    np.savez(folder / "in.npz", f0_hz=controls["f0_hz"][:, 0], level_db=controls["loudness_db"][:, 0],
             frames=np.array(8), audio_in=violin, block=np.array(BLOCK))
    done = run_in_environment("parity", str(folder / "bundle.npz"), str(folder / "in.npz"), str(folder / "out.npz"))
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(folder / "out.npz") as out:
        return {k: out[k] for k in out.files}, controls, violin


def test_the_modules_controls_and_audio_are_the_streaming_engines(played, demo_engine):
    """With f0 and loudness given, the module's controls equal the engine's within 1e-5
    (measured: 1e-7) and its audio the streaming engine's within 1e-4 of the peak (measured:
    1.5e-6), reverb, noise sequence and all."""
    from nas.engine.stream import StreamingEngine
    from nas.engine.synth import NOISE_BIAS, exp_sigmoid, harmonic_controls

    out, controls, _ = played
    engine, _ = demo_engine
    f0, loudness = controls["f0_hz"][:, 0], controls["loudness_db"][:, 0]
    raw = engine.decode(f0, loudness)
    amps = harmonic_controls(raw.amps, raw.harmonic_distribution, f0, engine.sample_rate)
    assert np.abs(out["amps"] - amps).max() < 1e-5
    assert np.abs(out["magnitudes"] - exp_sigmoid(raw.noise_magnitudes + NOISE_BIAS)).max() < 1e-5
    reference = StreamingEngine(engine).render(f0, loudness, 512)
    n = len(out["audio"])  # every frame but the last, whose audio waits for a successor
    assert n == len(reference) - engine.hop
    assert np.abs(out["audio"] - reference[:n]).max() < 1e-4 * np.abs(reference).max()


def test_the_modules_tracker_is_nas_live_tracker_and_its_sound_follows(played):
    """In-graph CREPE tiny and loudness against `nas play`'s LiveFeatures on the same
    blocks: f0 within 50 cents where sure (measured: 0.001), loudness within 0.01 dB; and
    the module's own output, 512 samples behind its input, follows the violin's pitch."""
    from nas.play.live import LiveFeatures
    from tests.test_live import _pitch_gap_cents

    out, _, violin = played
    live = LiveFeatures(250, pitch_every=4)
    parts = [live.feed(violin[i:i + BLOCK]) for i in range(0, len(violin) - BLOCK + 1, BLOCK)]
    f0, confidence, loudness, _ = (np.concatenate(p) for p in zip(*parts))
    ours_f0, _, ours_loudness, _ = out["features"]
    assert len(ours_f0) == len(f0) > 900
    sure = confidence >= 0.85
    assert sure.mean() > 0.5
    assert np.abs(1200 * np.log2(ours_f0[sure] / f0[sure])).max() < 50
    assert np.abs(ours_loudness - loudness).max() < 0.01
    played_back = out["live"][512:]
    assert np.abs(played_back).max() > 1e-3
    assert _pitch_gap_cents(played_back, violin[:len(played_back)]) < 50


def test_a_power_model_plays_in_buffers_that_end_inside_its_hops(tmp_path):
    """The ddsp-vst demo model (power, 320-sample hops) through the module: its audio is the
    streaming engine's, and buffers of 128 give full buffers back, a hop later."""
    from nas.engine.engine import Engine
    from nas.engine.stream import StreamingEngine
    from nas.models.saved import load_model
    from nas.models.weights import engine_weights
    from nas.play.neutone import bundle, delay_samples, run_in_environment
    from nas.resample import resample

    model, summary = load_model(DEMO_MODELS / "ddsp-vst")
    engine = Engine(summary.model, summary.sample_rate, engine_weights(model), seed=summary.seed)
    assert delay_samples(engine.hop) == 512 + 320
    bundle(engine, tmp_path / "bundle.npz", "demo-violin", summary.model_version)
    t = np.arange(400) / 50
    f0 = (330 * 2 ** (0.7 * np.sin(1.3 * t))).astype(np.float32)
    power = (-40 + 20 * np.sin(2 * t) ** 2).astype(np.float32)
    audio, rate = demo_audio()
    np.savez(tmp_path / "in.npz", f0_hz=f0, level_db=power, frames=np.array(3),
             audio_in=resample(audio[:2 * rate], rate, 16000), block=np.array(128))
    done = run_in_environment("parity", *(str(tmp_path / name) for name in ("bundle.npz", "in.npz", "out.npz")))
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(tmp_path / "out.npz") as out:
        reference = StreamingEngine(engine).render(f0, power, 640)
        n = len(out["audio"])
        assert np.abs(out["audio"] - reference[:n]).max() < 1e-4 * np.abs(reference).max()
        assert len(out["live"]) == 2 * 16000 and np.isfinite(out["live"]).all()
        assert np.abs(out["live"][:832]).max() == 0 and np.abs(out["live"][832:]).max() > 1e-3
