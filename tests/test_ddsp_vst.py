"""nas's features against DDSP-VST's own feature model (tests/data/ddsp-vst), run as the
plugin runs it: LiteRT with builtin ops only, 1,024 samples at 16 kHz a call."""

import numpy as np
import pytest

from nas.data.statistics import compute_power
from nas.pitch import SURE_PITCH
from nas.pitch.tracker import track_pitch
from nas.resample import resample
from tests.conftest import REPO, demo_audio

FEATURE_MODEL = REPO / "tests" / "data" / "ddsp-vst" / "extract_features_micro.tflite"
HOP = 320  # the plugin's: 50 control frames a second at 16 kHz


@pytest.fixture(scope="module")
def feature_model():
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(FEATURE_MODEL), num_threads=1,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    (audio,) = interpreter.get_input_details()
    assert (audio["name"], list(audio["shape"])) == ("call_audio:0", [1024])
    outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}

    def features(window: np.ndarray) -> tuple[float, float]:
        """(f0 Hz, power dB) of 1,024 samples."""
        interpreter.set_tensor(audio["index"], window.astype(np.float32))
        interpreter.invoke()
        return (float(interpreter.get_tensor(outputs["StatefulPartitionedCall:0"])[0]),
                float(interpreter.get_tensor(outputs["StatefulPartitionedCall:2"])[0]))
    return features


def test_nas_power_and_pitch_are_what_the_plugin_computes(feature_model):
    """On 8 s of the demo violin, frame by frame on the same windows (centred on each frame
    time, as nas's features are): nas's power (ddsp's compute_power, in the statistics)
    within 0.1 dB of the plugin's (measured: equal to 1e-4 dB), and CREPE tiny's f0 within
    50 cents of the plugin's where CREPE is sure (measured on 20 s of two recordings: median
    5-6 cents, 99% within 50; the rest an octave or more apart, one tracker's slip)."""
    audio, rate = demo_audio()
    audio = resample(audio[:8 * rate], rate, 16000)
    power = compute_power(audio, 16000 // HOP)
    track = track_pitch(audio, HOP, "tiny", viterbi=False, center=True, silent_peak=0)
    padded = np.pad(audio, 512)
    plugin = np.array([feature_model(padded[n * HOP:n * HOP + 1024]) for n in range(len(power))])
    assert np.abs(plugin[:, 1] - power).max() < 0.1
    sure = (track.confidence[:len(power)] >= SURE_PITCH) & (power > -60)
    assert sure.mean() > 0.5
    cents = 1200 * np.log2(plugin[sure, 0] / track.f0_hz[:len(power)][sure])
    assert np.median(np.abs(cents)) < 10 and np.mean(np.abs(cents) < 50) > 0.98
