"""`nas render`: a trained model played from control curves (MIDI or feature frames), offline
or through the streaming engine a block at a time, as a live stream would make it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nas.engine.engine import Engine
from nas.engine.stream import StreamingEngine
from nas.play.controls import Playing, feature_controls, midi_controls
from nas.play.model import load_engine, run_paths, run_statistics


def synthesize(engine: Engine, f0_hz: np.ndarray, loudness_db: np.ndarray, block: int | None) -> np.ndarray:
    """Offline (block None) or streamed, `block` samples a call."""
    if block is None:
        return engine.render(f0_hz, loudness_db)
    return StreamingEngine(engine).render(f0_hz, loudness_db, block)


def render(model: Path, midi: Path | None = None, features: Path | None = None, block: int | None = None,
           playing: Playing = Playing(), source: str | None = None) -> tuple[np.ndarray, int, dict]:
    """(audio, sample rate, what was played) for a MIDI file or feature frames."""
    run, config = run_paths(model)
    engine = load_engine(run)
    if midi is not None:
        statistics = run_statistics(config)
        controls = midi_controls(Path(midi), engine.control_rate, statistics, playing)
    else:
        controls = feature_controls(Path(features), engine.control_rate, source)
    audio = synthesize(engine, controls["f0_hz"], controls["loudness_db"], block)
    return audio, engine.sample_rate, {"frames": len(controls["f0_hz"]), "seconds": len(audio) / engine.sample_rate,
                                       "controls": controls}
