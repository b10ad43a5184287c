"""nas' NumPy loudness and power against ddsp.spectral_ops' on real audio."""

import numpy as np
import pytest

from nas import ddsp_api
from nas.data.loudness import compute_loudness
from nas.data.power import compute_power
from nas.resample import resample
from tests.conftest import demo_audio


@pytest.mark.parametrize("frame_rate, centered", [(50, True), (50, False), (250, True)])
def test_matches_ddsp(frame_rate, centered):
    spectral_ops = ddsp_api.spectral_ops()
    a, rate = demo_audio("violin-02")
    audio = resample(a[: 12 * rate], rate, 16000)
    audio[: 16000] *= 1e-5  # a near-silent second reaches the 80 dB floor
    ours = compute_loudness(audio, 16000, frame_rate, 512, centered)
    theirs = np.asarray(spectral_ops.compute_loudness(audio, 16000, frame_rate, 512,
                                                      padding="center" if centered else "same"))
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-3
    assert ours.min() == -80 and ours.max() > -20


def test_power_matches_ddsp():
    a, rate = demo_audio("violin-02")
    audio = resample(a[: 4 * rate], rate, 16000)
    audio[: 16000] *= 1e-5  # a near-silent second reaches the 80 dB floor
    ours = compute_power(audio, 50)
    theirs = np.asarray(ddsp_api.spectral_ops().compute_power(audio[None], frame_size=1024, frame_rate=50))[0]
    assert ours.shape == theirs.shape == (201,)
    assert np.abs(ours - theirs).max() < 1e-4
    assert ours.min() == -80 and ours.max() > -30
