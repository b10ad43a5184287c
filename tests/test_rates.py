"""The rate conversion of what nas plays: band-limited, aligned, the same streamed as whole,
and no allocation that grows with the block."""

import numpy as np
import pytest

from nas.play.rates import Resampler, check_rate, convert
from tests.conftest import allocation_growth

PAIRS = [(16000, 48000), (16000, 44100), (44100, 16000), (48000, 16000), (96000, 16000), (22050, 16000)]


def _tone(frequency: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    return np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate).astype(np.float32)


def _level_db(audio: np.ndarray, rate: int, above: float) -> float:
    """The largest spectral component above `above` Hz, of a full-scale sine's (dB)."""
    window = np.hanning(len(audio))
    spectrum = np.abs(np.fft.rfft(audio * window)) / (window.sum() / 2)
    return float(20 * np.log10(spectrum[np.fft.rfftfreq(len(audio), 1 / rate) > above].max() + 1e-12))


@pytest.mark.parametrize("rate_in, rate_out", PAIRS)
def test_a_tone_keeps_its_time_and_level_and_nothing_folds_or_images(rate_in, rate_out):
    converted = convert(_tone(1000.0, rate_in), rate_in, rate_out)
    assert len(converted) == rate_out
    middle = slice(rate_out // 10, -rate_out // 10)  # away from the clip's edges
    assert np.abs(converted - _tone(1000.0, rate_out))[middle].max() < 1e-5  # same phase: no delay left
    low = min(rate_in, rate_out)
    if rate_in > rate_out:  # 300 Hz above the lower Nyquist: it must not fold back
        assert _level_db(convert(_tone(low / 2 + 300, rate_in), rate_in, rate_out)[middle], rate_out, 0) < -100
    else:  # at 0.45 of the input rate: no image above its Nyquist
        assert _level_db(convert(_tone(0.45 * rate_in, rate_in), rate_in, rate_out)[middle], rate_out,
                         low / 2 + 50) < -100


@pytest.mark.parametrize("rate_in, rate_out", PAIRS)
def test_streamed_in_any_chunks_is_the_whole_clip_converted_at_once(rate_in, rate_out):
    rng = np.random.default_rng(0)
    clip = rng.uniform(-1, 1, rate_in // 2).astype(np.float32)
    whole = convert(clip, rate_in, rate_out)
    resampler = Resampler(rate_in, rate_out, capacity=1000)
    padded = np.concatenate([clip, np.zeros(rate_in // 10, np.float32)])
    out = np.zeros(resampler.outputs_after(len(padded)), np.float32)
    made, start = 0, 0
    for size in rng.integers(1, 3000, 10000):  # chunks above the capacity too
        if start >= len(padded):
            break
        made += resampler.process(padded[start:start + size], out[made:])
        start += size
    assert made == resampler.outputs_after(len(padded))
    assert np.array_equal(out[resampler.delay:resampler.delay + len(whole)], whole)
    assert resampler.delay * 1000 / rate_out <= 4.1  # 4 ms at most, whatever the rates


ALLOCATIONS = """
import tracemalloc
import numpy as np
from nas.play.rates import Resampler

for block in (32, 4096):
    resampler = Resampler(48000, 16000, capacity=4096)
    audio = np.random.default_rng(0).uniform(-1, 1, 300 * block).astype(np.float32)
    out = np.zeros(resampler.most_out(block), np.float32)
    for start in range(0, 50 * block, block):
        resampler.process(audio[start:start + block], out)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for start in range(50 * block, 250 * block, block):
        resampler.process(audio[start:start + block], out)
    print(block, tracemalloc.get_traced_memory()[1] - before)
    tracemalloc.stop()
"""


def test_a_block_allocates_no_more_for_a_longer_block():
    """What Python allocates per call is a few small objects, not buffers of the block's size.
    In a process of its own (`allocation_growth`)."""
    growth = allocation_growth(ALLOCATIONS)
    assert growth[4096] < 4096 and abs(growth[4096] - growth[32]) < 512, growth


def test_rates_outside_what_nas_plays_are_refused_with_the_range():
    assert check_rate(44100) == 44100
    with pytest.raises(ValueError, match="8000 to 192000 Hz"):
        check_rate(4000)
