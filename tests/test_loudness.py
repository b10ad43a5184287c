"""nas' NumPy loudness against ddsp.spectral_ops.compute_loudness on real audio."""

import numpy as np
import pytest

from nas import ddsp_api
from nas.data.loudness import compute_loudness
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
