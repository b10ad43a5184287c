"""The streaming engine against the offline engine, and the causal model it needs."""

import numpy as np
import pytest
import tensorflow as tf

from nas.config.presets import PRESETS
from nas.engine.engine import Engine
from nas.engine.stream import NotStreamable, StreamingEngine
from nas.models.weights import engine_weights
from nas.models.synthesizer import Synthesizer
from tests.conftest import DEMO_MODELS, allocation_growth, demo_audio, demo_truth, example_controls

PARITY = 1e-5  # of the offline audio's peak (acids' cached_conv holds streamed output to this)


def _model(norm: str, **settings) -> tuple[Synthesizer, Engine]:
    """cnn-tiny with the given normalisation, its weights perturbed away from their initial
    values; the same weights whatever ran before in the process (initialisers draw from the
    global seed and an op counter)."""
    config = PRESETS["cnn-tiny"].model_copy(update={"norm": norm, **settings})
    tf.keras.utils.set_random_seed(0)
    model = Synthesizer(config, 16000, 4.0)
    model.build_variables()
    rng = tf.random.Generator.from_seed(1)
    for variable in model.trainable_variables:
        variable.assign_add(rng.normal(variable.shape, stddev=0.05))
    return model, Engine(config, 16000, engine_weights(model))


@pytest.fixture(scope="module")
def frame_model():
    return _model("frame")


def test_the_frame_normalised_decoder_is_causal_and_the_sequence_one_is_not(frame_model):
    """The first 2 s decoded alone equal the first 2 s of the whole 4 s: no output looks ahead."""
    example = example_controls(frames=1000)
    for model in (frame_model[0], _model("sequence")[0]):
        features = {k: tf.constant(example[k][None]) for k in ("ld_scaled", "f0_scaled")}
        whole = model.decoder(features)["harmonic_distribution"].numpy()[0, :500]
        head = model.decoder({k: v[:, :500] for k, v in features.items()})["harmonic_distribution"].numpy()[0]
        gap = np.abs(whole - head).max()
        assert gap < 1e-5 if model.config.norm == "frame" else gap > 1e-2


@pytest.mark.parametrize("block", [32, 128, 1000, 4096, "random"])
def test_streamed_audio_is_the_offline_audio_at_any_block_size(frame_model, block):
    """Each engine with its own noise: the model's sequence, read in order from the first frame."""
    _, engine = frame_model
    example = example_controls(frames=1000)
    f0, loudness = example["f0_hz"][:, 0], example["loudness_db"][:, 0]
    offline = engine.render(f0, loudness)
    sizes = np.random.default_rng(0).integers(32, 4097, 40) if block == "random" else block
    streamed = StreamingEngine(engine).render(f0, loudness, sizes)
    assert streamed.shape == offline.shape
    assert np.abs(streamed - offline).max() <= PARITY * np.abs(offline).max()


def test_the_noise_is_the_model_s_whatever_was_played_before():
    """The same input sounds the same however many engines and renders came before it; the
    noise comes from the model's seed, and another seed changes it."""
    model, engine = _model("frame")
    example = example_controls(frames=500)
    f0, loudness = example["f0_hz"][:, 0], example["loudness_db"][:, 0]
    first = engine.render(f0, loudness)
    StreamingEngine(engine).render(f0[:100], loudness[:100], 128)
    assert np.array_equal(engine.render(f0, loudness), first)
    again = Engine(engine.config, engine.sample_rate, engine_weights(model), seed=engine.seed)
    assert np.array_equal(again.render(f0, loudness), first)
    reseeded = Engine(engine.config, engine.sample_rate, engine_weights(model), seed=7)
    noise, other = (e.synthesize(e.decode(f0, loudness), f0).noise for e in (engine, reseeded))
    # another seed's noise is another draw: uncorrelated (a max-difference threshold failed on
    # some random initial weights, whose filter made the two noises' peaks close)
    assert abs(np.corrcoef(noise, other)[0, 1]) < 0.2


def test_audio_comes_one_frame_behind_the_controls_and_silence_when_they_are_late(frame_model):
    _, engine = frame_model
    stream = StreamingEngine(engine)
    assert stream.latency == 64 and stream.lookahead_frames == 1  # one hop: 4 ms at 250 frames/s, 16 kHz
    example = example_controls(frames=20)
    out = np.ones(128, np.float32)
    stream.push(example["f0_hz"][:2, 0], example["loudness_db"][:2, 0])
    assert stream.pull(out) == 64 and not out[64:].any()  # frame 0's audio only: frame 1 is its lookahead
    stream.push(example["f0_hz"][2:4, 0], example["loudness_db"][2:4, 0])
    assert stream.pull(out) == 128 and np.abs(out).max() > 0


ALLOCATIONS = """
import sys, tracemalloc
import numpy as np
from nas.engine.engine import Engine
from nas.engine.stream import StreamingEngine
from nas.config.presets import PRESETS

config = PRESETS["cnn-tiny"]
rng = np.random.default_rng(0)
shapes = {"input_conv": (3, 2, 8), "input.mean": (2,), "input.std": (2,), "dense_out.kernel": (8, 126),
          "dense_out.bias": (126,), "reverb.ir": (16000,)}
shapes |= {f"res{i}.{k}": s for i in range(6) for k, s in (("conv", (3, 8, 8)), ("scale", (8,)), ("shift", (8,)))}
weights = {k: (0.1 * rng.standard_normal(s)).astype(np.float32) for k, s in shapes.items()}
weights["input.std"] = np.ones(2, np.float32)
stream = StreamingEngine(Engine(config, 16000, weights))
f0, loudness = np.full(20000, 440, np.float32), np.full(20000, -30, np.float32)
for block in (32, 4096):
    stream.reset()
    out, frames, fed = np.zeros(block, np.float32), -(-block // 64), 0
    for round_ in range(2):  # the first round warms up
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(40):
            stream.push(f0[fed:fed + frames], loudness[fed:fed + frames])
            fed += frames
            stream.pull(out)
        growth = tracemalloc.get_traced_memory()[1] - before
        tracemalloc.stop()
    print(block, growth)
"""


def test_a_block_allocates_nothing_in_steady_state():
    """What Python allocates while a block is made is the same small amount for a block of 32
    and of 4,096 samples (16 KiB of audio): no buffer of the block's or a frame's size. In a
    process of its own (`allocation_growth`)."""
    growth = allocation_growth(ALLOCATIONS)
    assert growth[4096] < 4096 and abs(growth[4096] - growth[32]) < 512, growth


def test_a_model_that_needs_the_future_is_refused_with_the_setting_that_streams():
    with pytest.raises(NotStreamable, match="model.norm=frame"):
        StreamingEngine(_model("sequence")[1])


def _demo_controls(seconds: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """The demo violin's own controls at 250 frames/s: its MIDI f0 and its loudness."""
    from nas.data.loudness import compute_loudness
    from nas.resample import resample

    audio, rate = demo_audio()
    truth = demo_truth()
    frames = int(seconds * 250)
    voiced = truth[:, 1] > 0
    f0 = np.interp(np.arange(frames) / 250, truth[voiced, 0], truth[voiced, 1])
    loudness = compute_loudness(resample(audio, rate, 16000), 16000, 250)[:frames]
    return f0.astype(np.float32), loudness.astype(np.float32)


@pytest.mark.parametrize("norm", ["sequence", "frame"])
def test_the_demo_model_s_engine_and_stream_match_tensorflow(norm):
    """The demo's models (750 steps, as `make demo` trained them until 2026-12-06; committed) on
    the demo violin's own controls: the engine's audio within 1e-5 of TensorFlow's peak; the
    frame model streamed too."""
    from nas.engine.engine import scale_inputs
    from nas.export.bundle import engine_differences, relative_difference
    from nas.models.saved import load_model

    model, summary = load_model(DEMO_MODELS / norm)
    assert summary.model.norm == norm
    engine = Engine(summary.model, summary.sample_rate, engine_weights(model), seed=summary.seed)
    f0, loudness = _demo_controls(4.0)
    ld, f0_scaled = scale_inputs(f0, loudness)
    example = {"f0_hz": f0[:, None], "loudness_db": loudness[:, None], "ld_scaled": ld[:, None],
               "f0_scaled": f0_scaled[:, None]}
    assert relative_difference(engine_differences(model, engine, [example])) <= 1e-5  # the goal
    if norm == "frame":  # 32 s: past the noise sequence's 30 s, where both engines wrap it
        f0, loudness = _demo_controls(32.0)
        offline = engine.render(f0, loudness)
        streamed = StreamingEngine(engine).render(f0, loudness, np.array([128, 77, 4096, 32, 1000]))
        assert np.abs(streamed - offline).max() <= PARITY * np.abs(offline).max()
