"""How an evaluation's scores read for people: one line, the same everywhere (CLI,
Prefect cards, benchmarks). Light: no TensorFlow, so flows can import it."""

from __future__ import annotations


def score_line(metrics: dict) -> str:
    """metrics: an evaluation's aggregates (spectral_loss, f0_mae_cents, rpa, loudness_mae_db)."""
    return (f"spectral loss {metrics['spectral_loss']:.3f}, f0 {metrics['f0_mae_cents']:.1f} cents "
            f"(RPA {metrics['rpa']:.3f}), loudness {metrics['loudness_mae_db']:.2f} dB")
