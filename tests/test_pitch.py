"""CREPE: decoders against brute force, network against torchcrepe, accuracy on truth."""

import sys
import types

import numpy as np
import pytest

from nas.pitch import CLEAR_PITCH, SILENT_PEAK
from nas.pitch.decode import BIN_CENTS, cents_to_hz, local_average_cents, viterbi_path
from nas.pitch.tracker import frame_audio, frame_peaks, track_pitch
from nas.resample import resample
from tests.conftest import demo_audio, demo_truth


def _viterbi_brute_force(activation):
    """Textbook Viterbi over the full 360 x 360 matrices of CREPE's HMM."""
    n = activation.shape[1]
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    transition = np.maximum(12 - np.abs(i - j), 0).astype(float)
    transition /= transition.sum(axis=1, keepdims=True)
    emission = np.eye(n) * 0.1 + np.ones((n, n)) * 0.9 / n
    with np.errstate(divide="ignore"):
        log_t, log_e = np.log(transition), np.log(emission)
    obs = activation.argmax(axis=1)
    score = np.log(1 / n) + log_e[:, obs[0]]
    back = []
    for o in obs[1:]:
        candidates = score[:, None] + log_t
        back.append(candidates.argmax(axis=0))
        score = candidates.max(axis=0) + log_e[:, o]
    path = [int(score.argmax())]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    return np.array(path[::-1])


def test_viterbi_matches_brute_force_on_noisy_activations():
    rng = np.random.default_rng(1)
    true_bins = np.clip(150 + np.cumsum(rng.integers(-3, 4, 120)), 0, 359)
    activation = rng.random((120, 360)) * 0.3
    activation[np.arange(120), true_bins] += 0.6
    activation[rng.random(120) < 0.2, rng.integers(0, 360)] = 1.0  # octave-like outliers
    np.testing.assert_array_equal(viterbi_path(activation), _viterbi_brute_force(activation))


def test_local_average_is_the_weighted_mean_of_nine_bins():
    activation = np.zeros((2, 360), np.float32)
    activation[0, 100:103] = [0.5, 1.0, 0.5]
    activation[1, 0:2] = [1.0, 1.0]  # at the edge: only in-range bins count
    cents = local_average_cents(activation)
    assert cents[0] == pytest.approx(BIN_CENTS[101], abs=1e-6)
    assert cents[1] == pytest.approx((BIN_CENTS[0] + BIN_CENTS[1]) / 2, abs=1e-6)


@pytest.fixture(scope="module")
def torchcrepe():
    # torchcrepe imports torchaudio only to read files, which we do not use; PyPI's
    # torchaudio does not load beside the CPU torch on this machine.
    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
    import torch
    import torchcrepe as tc

    torch.set_num_threads(2)
    return tc


def _torch_activations(tc, frames, capacity):
    import torch

    tc.load.model(torch.device("cpu"), capacity)
    with torch.inference_mode():
        return tc.infer(torch.from_numpy(frames), capacity).numpy()


def _independent_f0(activation):
    """CREPE's published decoding, written out: weighted cents over argmax +- 4 bins."""
    out = []
    for row in activation:
        c = int(row.argmax())
        lo, hi = max(0, c - 4), min(360, c + 5)
        cents = 1997.3794084376191 + 20 * np.arange(lo, hi)
        out.append(10 * 2 ** ((row[lo:hi] * cents).sum() / row[lo:hi].sum() / 1200))
    return np.array(out)


def _cents(a, b):
    return np.abs(1200 * np.log2(a / b))


def test_tiny_network_matches_torchcrepe(torchcrepe):
    a, rate = demo_audio("violin-03")
    frames = frame_audio(resample(a[: 10 * rate], rate, 16000), 160, center=True)
    ours = track_pitch(resample(a[: 10 * rate], rate, 16000), 160, "tiny", viterbi=False, silent_peak=0)
    theirs = _torch_activations(torchcrepe, frames, "tiny")
    assert np.abs(ours.activation - theirs).max() < 2e-3
    confident = (ours.confidence > 0.5) & (theirs.max(axis=1) > 0.5)
    assert confident.mean() > 0.5
    assert _cents(ours.f0_hz, _independent_f0(theirs))[confident].max() < 5


def test_crepe_in_onnx_runtime_matches_the_tensorflow_network():
    """nas's CREPE (an ONNX graph built from the weights) is the network ddsp's in-graph CREPE
    builds in TensorFlow: on real violin frames, in batches as preparing runs it (all cores)
    and one frame at a time as a live block asks for it (one thread)."""
    from nas.pitch.network import load_network
    from nas.pitch.onnx_network import OnnxNetwork

    a, rate = demo_audio("violin-03")
    frames = frame_audio(resample(a[: 2 * rate], rate, 16000), 160, center=True)
    batched, live, reference = OnnxNetwork("tiny"), OnnxNetwork("tiny", threads=1), load_network("tiny")(frames).numpy()
    assert batched(frames).shape == reference.shape == (len(frames), 360)
    assert np.abs(batched(frames) - reference).max() < 1e-5
    assert np.abs(live(frames[7:8]) - reference[7:8]).max() < 1e-5


def _rpa(f0, truth, voiced):
    return float(np.mean(_cents(f0[voiced], truth[voiced]) < 50))


@pytest.mark.slow
def test_full_viterbi_accuracy_and_parity_on_ground_truth(torchcrepe):
    """Raw pitch accuracy on the demo's exact f0 (CREPE full + Viterbi, 50 frames/s), over
    its first 16 s: 800 frames, 650 of them steady notes (the whole demo's accuracy is
    benchmarks/crepe_accuracy.py's; CREPE full takes ~0.7 s per second of audio here)."""
    a, rate = demo_audio("violin-00")
    audio = resample(a[: 16 * rate], rate, 16000)
    truth = demo_truth("violin-00")[::2]  # truth is every 10 ms; frames every 20 ms
    ours = track_pitch(audio, 320, "full", viterbi=True, silent_peak=0)  # every frame, for the parity below
    n = min(len(truth), len(ours.f0_hz))
    f0, true_f0, boundary = ours.f0_hz[:n], truth[:n, 1], truth[:n, 2]
    voiced = true_f0 > 0
    steady = voiced & (boundary > 0.04)
    rpa_steady, rpa_all = _rpa(f0, true_f0, steady), _rpa(f0, true_f0, voiced)
    print(f"RPA full+Viterbi: {rpa_steady:.4f} away from note boundaries, {rpa_all:.4f} on all voiced frames")
    assert rpa_steady >= 0.96
    assert rpa_all >= 0.90

    # torchcrepe (PyTorch port of the same weights, its own Viterbi) on the first 8 s.
    import torch

    frames = frame_audio(audio[: 8 * 16000], 320, center=True)
    theirs = _torch_activations(torchcrepe, frames, "full")
    m = len(frames)
    _, f0_torch = torchcrepe.decode.viterbi(torch.from_numpy(theirs.T[None].copy()))
    f0_torch = f0_torch[0].numpy()
    subset = steady[:m]
    rpa_ours, rpa_torch = _rpa(f0[:m], true_f0[:m], subset), _rpa(f0_torch, true_f0[:m], subset)
    print(f"first 8 s: ours {rpa_ours:.4f}, torchcrepe {rpa_torch:.4f}")
    assert rpa_ours >= rpa_torch - 0.01

    mine = ours.activation[:m]
    confident = (mine.max(axis=1) > 0.5) & (theirs.max(axis=1) > 0.5)
    assert confident.mean() > 0.5
    assert _cents(cents_to_hz(local_average_cents(mine)), _independent_f0(theirs))[confident].max() < 5


@pytest.mark.parametrize("viterbi", [False, True])
def test_silence_skips_the_network_and_changes_no_voiced_frame(viterbi):
    a, rate = demo_audio("violin-00")
    audio = resample(a[: 8 * rate], rate, 16000)  # opens with 0.3 s of silence, rests between phrases
    every = track_pitch(audio, 320, "tiny", viterbi=viterbi, silent_peak=0)
    skipping = track_pitch(audio, 320, "tiny", viterbi=viterbi)
    tracked = frame_peaks(audio, 320, center=True) >= SILENT_PEAK
    assert 0.05 < np.mean(~tracked) < 0.5
    # The same values, to the float32 rounding by which the network's kernels already differ
    # with the batch's make-up (batch_frames 50 instead of 64: up to 1.8e-7 here).
    np.testing.assert_allclose(skipping.activation[tracked], every.activation[tracked], rtol=0, atol=1e-6)
    assert np.all(skipping.confidence[~tracked] == 0)
    voiced = tracked & (every.confidence >= CLEAR_PITCH)
    assert voiced.sum() > 200 and _cents(skipping.f0_hz[voiced], every.f0_hz[voiced]).max() < 0.01
    if not viterbi:  # frame by frame: every tracked frame is unchanged
        assert _cents(skipping.f0_hz[tracked], every.f0_hz[tracked]).max() < 0.01
    # skipped frames carry the f0 on: between their nearest tracked neighbours, never 0
    f0 = skipping.f0_hz
    for i in np.flatnonzero(~tracked):
        before, after = np.flatnonzero(tracked[:i]), np.flatnonzero(tracked[i:]) + i
        around = [f0[j[k]] for j, k in ((before, -1), (after, 0)) if len(j)]
        assert min(around) * (1 - 1e-6) <= f0[i] <= max(around) * (1 + 1e-6)
