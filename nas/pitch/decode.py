"""CREPE's decoders from bin activations to f0, vectorised with NumPy.

`local_average_cents`: the activation-weighted mean of the cents of the 9 bins around
a centre bin (the peak, or the Viterbi path). `viterbi_path`: the most likely bin
sequence of CREPE's HMM (uniform start; transitions proportional to max(12 - |i - j|, 0);
observing the argmax bin with probability 0.1 + 0.9/360 if it is the state, else
0.9/360), the same model the `crepe` package decodes with hmmlearn.
"""

from __future__ import annotations

import numpy as np

from .weights import N_BINS

CENTS_OFFSET = 1997.3794084376191  # bin 0 is ~31.7 Hz
BIN_CENTS = np.linspace(0, 7180, N_BINS) + CENTS_OFFSET
_REACH = 11  # transitions reach 11 bins either way
_SELF_EMISSION = 0.1


def cents_to_hz(cents: np.ndarray) -> np.ndarray:
    return 10.0 * 2.0 ** (cents / 1200.0)


def local_average_cents(activation: np.ndarray, centers: np.ndarray | None = None) -> np.ndarray:
    """activation [frames, 360] -> cents [frames], averaged over bins centre-4..centre+4."""
    if centers is None:
        centers = activation.argmax(axis=1)
    offsets = np.arange(-4, 5)
    index = centers[:, None] + offsets[None, :]
    valid = (index >= 0) & (index < N_BINS)
    index = np.clip(index, 0, N_BINS - 1)
    weights = np.take_along_axis(activation, index, axis=1) * valid
    total = weights.sum(axis=1)
    cents = (weights * BIN_CENTS[index]).sum(axis=1) / np.where(total > 0, total, 1.0)
    return cents


def _log_transition_band() -> np.ndarray:
    """band[k, j] = log P(state j | previous state j + k - REACH); -inf off the matrix."""
    i, j = np.meshgrid(np.arange(N_BINS), np.arange(N_BINS), indexing="ij")
    transition = np.maximum(12 - np.abs(i - j), 0).astype(np.float64)
    transition /= transition.sum(axis=1, keepdims=True)
    band = np.full((2 * _REACH + 1, N_BINS), -np.inf)
    for k in range(2 * _REACH + 1):
        previous = np.arange(N_BINS) + k - _REACH
        ok = (previous >= 0) & (previous < N_BINS)
        band[k, ok] = np.log(transition[previous[ok], np.arange(N_BINS)[ok]])
    return band


_LOG_BAND = _log_transition_band()
_LOG_MATCH = np.log(_SELF_EMISSION + (1 - _SELF_EMISSION) / N_BINS)
_LOG_OTHER = np.log((1 - _SELF_EMISSION) / N_BINS)


def viterbi_path(activation: np.ndarray, observed: np.ndarray | None = None) -> np.ndarray:
    """Most likely state sequence [frames] of CREPE's HMM given the argmax bins; frames
    not `observed` (skipped silence) have none, every state equally likely."""
    observations = np.where(True if observed is None else observed, activation.argmax(axis=1), -1)
    n_frames = len(observations)
    if n_frames == 0:
        return observations
    backpointers = np.empty((n_frames, N_BINS), dtype=np.int16)
    score = np.full(N_BINS, np.log(1.0 / N_BINS) + _LOG_OTHER)
    if observations[0] >= 0:
        score[observations[0]] += _LOG_MATCH - _LOG_OTHER
    padded = np.full(N_BINS + 2 * _REACH, -np.inf)
    states = np.arange(N_BINS)
    for t in range(1, n_frames):
        padded[_REACH:-_REACH] = score
        windows = np.lib.stride_tricks.sliding_window_view(padded, N_BINS)  # [23, 360]
        candidates = windows + _LOG_BAND
        best = candidates.argmax(axis=0)
        score = candidates[best, states] + _LOG_OTHER
        if observations[t] >= 0:
            score[observations[t]] += _LOG_MATCH - _LOG_OTHER
        backpointers[t] = best - _REACH + states  # the previous state itself
    path = np.empty(n_frames, dtype=np.int64)
    path[-1] = int(score.argmax())
    for t in range(n_frames - 1, 0, -1):
        path[t - 1] = backpointers[t, path[t]]
    return path
