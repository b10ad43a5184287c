"""The crepe-compatible module: ddsp imports it and gets nas' CREPE."""

import importlib.util
import sys

import numpy as np

from nas import ddsp_api
from nas.pitch.tracker import track_pitch
from nas.resample import resample
from tests.conftest import demo_audio


def test_ddsp_compute_f0_runs_on_the_compat_module():
    spectral_ops = ddsp_api.spectral_ops()
    crepe = sys.modules["crepe"]
    real_crepe_installed = importlib.util.find_spec("crepe").origin != crepe.__file__
    if not real_crepe_installed:
        assert crepe.__name__ == "nas.crepe_compat"
    a, rate = demo_audio("violin-04")
    audio = resample(a[2 * rate: 5 * rate], rate, 16000)
    f0, confidence = spectral_ops.compute_f0(audio, frame_rate=50, viterbi=True, padding="center")
    assert len(f0) == len(confidence) == 3 * 50 + 1
    if not real_crepe_installed:
        ours = track_pitch(audio, 320, "full", viterbi=True, center=True, silent_peak=0)  # crepe's API skips none
        np.testing.assert_allclose(f0, ours.f0_hz, rtol=1e-4)
        np.testing.assert_allclose(confidence, ours.confidence, atol=1e-5)
    assert np.median(confidence) > 0.5 and 150 < np.median(f0) < 1500


def test_predict_returns_crepe_tuple_and_resamples():
    from nas import crepe_compat

    a, rate = demo_audio("violin-04")
    time, frequency, confidence, activation = crepe_compat.predict(a[:rate], rate, model_capacity="tiny",
                                                                   step_size=10, verbose=0)
    assert activation.shape == (101, 360) and time[1] == 0.01
    assert frequency.shape == confidence.shape == time.shape
