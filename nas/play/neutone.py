"""A model for Neutone FX: the whole live chain (`nas play`'s) as one TorchScript module,
written by neutone-sdk's `save_neutone_model`, which runs the SDK's own checks.

neutone-sdk 1.5.2 needs torchaudio, which pins torch 2.11, and numpy < 2.3: neither goes
beside nas's TensorFlow environment, so the export runs in an environment of its own
(`make neutone-env`: `.venv-neutone`, from `requirements-neutone.lock`). This half runs in
nas's environment: it checks the model can stream and gathers everything the module needs
as plain arrays (`bundle`), each made by the same nas function that makes it for the
streaming engine. `nas.play.neutone_module` builds the module from them in the export's
environment.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.atomic import replace_dir, staging_dir
from nas.config.presets import ModelConfig
from nas.engine.engine import Engine
from nas.engine.stream import NotStreamable, check_streamable
from nas.engine.synth import crossfade
from nas.noise_filter import noise_crop, noise_impulses
from .live import CENTRED, PITCH_EVERY
from .neutone_settings import BundleSettings, Constants

log = logging.getLogger(__name__)
BUFFER_SIZES = (128, 256, 512, 1024, 2048)  # what the module takes (Neutone re-cuts the host's buffers)
REPO = Path(__file__).resolve().parents[2]
ENVIRONMENT = REPO / ".venv-neutone"  # made by `make neutone-env`


class NeutoneError(ValueError):
    """A model or an environment the export cannot use; the message says which and why."""


def check(config: ModelConfig) -> None:
    """NeutoneError unless the model (its model.json's `model`) streams and the export's
    environment is installed."""
    try:
        check_streamable(config)
    except NotStreamable as error:
        raise NeutoneError(f"Neutone FX plays a model as it streams, and {error}") from None
    if not (ENVIRONMENT / "bin" / "python").exists():
        raise NeutoneError(f"{ENVIRONMENT}: the Neutone export's environment is not installed; run "
                           "`make neutone-env` (torch 2.11, torchaudio 2.11, neutone-sdk 1.5.2: about 4.6 GB)")


def delay_samples(hop: int) -> int:
    """What the module's output runs behind its input at 16 kHz: the features' lookahead
    (centred, as offline), and a hop more where a buffer ends inside a hop: a frame's audio
    is complete only once the next frame's windows are."""
    return CENTRED + (0 if all(size % hop == 0 for size in BUFFER_SIZES) else hop)


@dataclass(frozen=True)
class NeutoneExport:
    folder: Path  # model.nm, metadata.json, samples/
    delay_samples: int  # at 16 kHz, what the model tells the DAW
    bytes: int


def export(engine: Engine, out: Path, name: str, version: str) -> NeutoneExport:
    """`out/model.nm` through neutone-sdk's `save_neutone_model` and its checks, in the
    export's environment; `out` is swapped in whole once the SDK is done, and left as it
    was if the SDK refuses (NeutoneError with its last words)."""
    check(engine.config)
    staging = staging_dir(out)
    with tempfile.TemporaryDirectory() as folder:
        arrays = Path(folder) / "bundle.npz"
        bundle(engine, arrays, name, version)
        log.info("neutone-sdk is scripting %s, rendering its sample sounds and checking the saved model "
                 "(a minute or two)", version)
        started = time.perf_counter()
        done = run_in_environment("export", str(arrays), str(staging))
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise NeutoneError(f"neutone-sdk refused the model: {done.stderr.strip().splitlines()[-1:]}")
    log.info("neutone-sdk passed it in %.0f s", time.perf_counter() - started)
    replace_dir(staging, out, commit="model.nm")
    return NeutoneExport(out, delay_samples(engine.hop), (out / "model.nm").stat().st_size)


def bundle(engine: Engine, path: Path, name: str, version: str) -> None:
    """Everything the module holds, as arrays in one .npz: the decoder's weights, the
    synthesizers' fixed filters and crossfade, the reverb, the noise sequence, CREPE tiny
    (folded batch norm), the loudness spectra's window and A-weighting; and its settings:
    the features' lookahead (centred, as offline) and pitch cadence are `nas play`'s."""
    from nas.config import POWER_FRAME_SIZE
    from nas.constants import DB_RANGE, F0_RANGE, NORMALIZE_EPS
    from nas.data.features import SOUNDING_DB
    from nas.engine.synth import NOISE_BIAS
    from nas.pitch import FRAME_SIZE, SURE_PITCH
    from nas.pitch.decode import BIN_CENTS
    from nas.pitch.weights import folded_weights
    from nas.play.adjust import QUIET_DB
    from nas.spectrum import LOUDNESS_N_FFT, a_weighting, periodic_hann

    n_bands = engine.config.n_noise_bands
    decoder = engine.decoder
    mean, std = decoder.input_moments or (np.zeros(2), np.ones(2))
    blocks, (dense_kernel, dense_bias) = folded_weights("tiny")
    arrays = {
        "input_mean": mean, "input_std": std, "input_conv": decoder.input_conv, "kernels": decoder.kernels,
        "scales": decoder.scales, "shifts": decoder.shifts, "dilations": np.asarray(decoder.dilations),
        "dense": decoder.dense[0], "bias": decoder.dense[1],
        "out_norm": np.stack(decoder.out_norm) if decoder.out_norm else np.zeros((2, 0)),
        "impulses": noise_impulses(n_bands), "noise": engine.noise,
        "fall": crossfade(engine.hop)[0], "rise": crossfade(engine.hop)[1], "reverb": engine.reverb.ir,
        "a_weighting": a_weighting(LOUDNESS_N_FFT, engine.sample_rate),
        "loudness_window": periodic_hann(LOUDNESS_N_FFT),
        "crepe_dense": dense_kernel, "crepe_dense_bias": dense_bias,
        **{f"crepe{i}.{part}": value for i, block in enumerate(blocks)
           for part, value in zip(("kernel", "bias", "scale", "shift"), block[:4])},
        "crepe_strides": np.array([block[4] for block in blocks]), "bin_cents": BIN_CENTS,
    }
    constants = Constants(frame=FRAME_SIZE, loudness_n_fft=LOUDNESS_N_FFT, power_frame=POWER_FRAME_SIZE,
                          sure_pitch=SURE_PITCH, sounding_db=SOUNDING_DB, quiet_db=QUIET_DB, db_range=DB_RANGE,
                          f0_range=F0_RANGE, noise_bias=NOISE_BIAS, eps=NORMALIZE_EPS)
    settings = BundleSettings(sample_rate=engine.sample_rate, hop=engine.hop, n_harmonics=engine.n_harmonics,
                              crop=noise_crop(n_bands), level=engine.level, lookahead=CENTRED,
                              delay=delay_samples(engine.hop), buffer_sizes=BUFFER_SIZES, pitch_every=PITCH_EVERY,
                              name=name, version=version, constants=constants)
    integers, doubles = ("dilations", "crepe_strides"), ("reverb", "bin_cents")  # the rest float32
    np.savez(path, settings=np.array(settings.to_json()),
             **{k: np.asarray(v, np.int64 if k in integers else np.float64 if k in doubles else np.float32)
                for k, v in arrays.items()})


def run_in_environment(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`python -m nas.play.neutone_module ARGS` in the export's environment."""
    python = ENVIRONMENT / "bin" / "python"
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([str(python), "-m", "nas.play.neutone_module", *args], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=timeout)
