"""A static HTML page that plays each listening example beside its resynthesis."""

from __future__ import annotations

import html
from pathlib import Path

from nas.atomic import atomic_path
from nas.evaluation.metrics import ExampleScores
from nas.store.artifacts import Evaluation

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; } td, th { border: 1px solid #ccc; padding: .3rem .6rem; }
th { background: #f4f4f4; } .bad { color: #b00; font-weight: bold; } img { max-width: 100%; }
section { border-top: 1px solid #ddd; margin-top: 1.5rem; padding-top: 1rem; }
"""

_METRICS = (("spectral_loss", "multi-scale spectral loss", "{:.3f}"),
            ("f0_mae_cents", "f0 error, mean |cents| (confident frames)", "{:.1f}"),
            ("rpa", "raw pitch accuracy (within 50 cents)", "{:.3f}"),
            ("loudness_mae_db", "loudness error, mean |dB|", "{:.2f}"))


def _fmt(pattern: str, value) -> str:
    return pattern.format(value) if value == value else "n/a"  # NaN: no confident frames


def write_report(path: Path, result: Evaluation, rows: list[ExampleScores]) -> None:
    e = html.escape
    metrics = result.metrics
    previous = result.previous_eval_id
    if result.regression:
        regression = (f"<p class='bad'>Regression against evaluation {e(previous)}: "
                      f"{e('; '.join(result.regressions))}</p>")
    elif previous:
        regression = f"<p>No regression against evaluation {e(previous)}.</p>"
    else:
        regression = "<p>First evaluation of this model on this dataset.</p>"
    dataset = result.dataset
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>nas evaluation {e(result.model_version)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(dataset.name)}: model <code>{e(result.model_version)}</code></h1>",
        f"<p>Dataset version <code>{e(dataset.version)}</code>, {e(dataset.split)} split, "
        f"{metrics.examples} examples; evaluation <code>{e(result.eval_id)}</code> ({e(result.created)}).</p>",
        regression,
        "<table><tr><th>metric</th><th>value</th></tr>",
        *[f"<tr><td>{label}</td><td>{_fmt(p, getattr(metrics, k))}</td></tr>" for k, label, p in _METRICS],
        "</table>",
    ]
    for item in result.listen:
        parts += [
            f"<section><h2>Example {item.example}</h2>",
            f"<p>original <audio controls preload='none' src='{e(item.original)}'></audio> "
            f"resynthesis <audio controls preload='none' src='{e(item.resynthesis)}'></audio></p>",
            f"<img src='{e(item.spectrogram)}' alt='spectrograms'>",
            f"<img src='{e(item.features)}' alt='f0 and loudness'>",
            "</section>",
        ]
    parts += ["<section><h2>Every example</h2><table><tr><th>example</th>",
              *[f"<th>{k}</th>" for k, _, _ in _METRICS], "</tr>"]
    parts += [f"<tr><td>{r.example}</td>" + "".join(f"<td>{_fmt(p, getattr(r, k))}</td>" for k, _, p in _METRICS)
              + "</tr>" for r in rows]
    parts += ["</table></section></body></html>"]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
