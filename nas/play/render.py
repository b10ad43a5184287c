"""`nas render`: a trained model played from control curves (MIDI or feature frames), offline
or through the streaming engine a block at a time, as a live stream would make it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.engine.engine import Engine
from nas.engine.stream import NotStreamable, StreamingEngine, check_streamable
from nas.play.controls import Playing, feature_controls, midi_controls
from nas.play.model import load_engine, run_paths
from nas.play.rates import Resampler, check_rate, convert
from nas.store.datasets import load_statistics

# The offline path's intermediates grow with the clip (two hours at 48 kHz peaked at 8.8 GB):
# longer clips are streamed, a second a call, holding only their audio (5.3 GB for the same,
# its WAV encoded in memory included).
LONGEST_OFFLINE_S = 120.0


def synthesize(engine: Engine, f0_hz: np.ndarray, level_db: np.ndarray, block: int | None,
               rate: int | None = None) -> np.ndarray:
    """At `rate` (default: the model's), offline (block None) or streamed `block` samples a
    call at that rate: the streaming engine's blocks converted as they come, as live play
    converts them."""
    rate = rate or engine.sample_rate
    if block is None:
        return convert(engine.render(f0_hz, level_db), engine.sample_rate, rate)
    if rate == engine.sample_rate:
        return StreamingEngine(engine).render(f0_hz, level_db, block)
    resampler = Resampler(engine.sample_rate, rate)
    model_block = -(-block * engine.sample_rate // rate)  # the model's samples a block at `rate` needs
    audio = StreamingEngine(engine).render(f0_hz, level_db, model_block)
    length = resampler.outputs_after(len(audio))
    tail = np.zeros(-(-resampler.letting_out() // model_block) * model_block, np.float32)  # whole blocks
    out = np.empty(resampler.outputs_after(len(audio) + len(tail)), np.float32)
    made = 0
    for part in (audio, tail):
        for start in range(0, len(part), model_block):
            made += resampler.process(part[start:start + model_block], out[made:])
    return out[resampler.delay:resampler.delay + length]


@dataclass(frozen=True)
class Rendered:
    rate: int
    frames: int  # control frames played
    seconds: float
    block: int | None  # None: offline
    long: bool = False  # asked for offline, streamed for its length

    def describe(self) -> str:
        how = f"streamed in blocks of {self.block}" if self.block else "offline"
        if self.long:
            how = f"streamed a second a call (longer than {LONGEST_OFFLINE_S:g} s)"
        return f"{self.seconds:.2f} s at {self.rate} Hz ({self.frames} control frames), {how}"


def render(model: Path, midi: Path | None = None, features: Path | None = None, block: int | None = None,
           playing: Playing = Playing(), source: str | None = None,
           rate: int | None = None) -> tuple[np.ndarray, Rendered]:
    """A MIDI file or feature frames played at `rate` (default: the model's), and what was played."""
    run, dataset_dir = run_paths(model)
    engine = load_engine(run)
    rate = check_rate(rate or engine.sample_rate)
    if midi is not None:
        statistics = load_statistics(dataset_dir)
        controls = midi_controls(Path(midi), engine.control_rate, statistics, playing, engine.level)
    else:
        controls = feature_controls(Path(features), engine.control_rate, source, engine.level)
    f0_hz, level = controls.f0_hz, controls.level_db
    long = block is None and len(f0_hz) > LONGEST_OFFLINE_S * engine.control_rate
    if long:
        try:
            check_streamable(engine.config)
        except NotStreamable as error:
            minutes = len(f0_hz) / engine.control_rate / 60
            raise NotStreamable(f"{midi or features}: {minutes:.1f} minutes, longer than the {LONGEST_OFFLINE_S:g} s "
                                f"this model renders at once, and {error}") from None
    audio = synthesize(engine, f0_hz, level, rate if long else block, rate)
    return audio, Rendered(rate, len(f0_hz), len(audio) / rate, block, long)
