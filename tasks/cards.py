"""Markdown and table content of the Prefect artifacts (lineage in the UI)."""

from __future__ import annotations

import html
import math
from pathlib import Path

from nas.config.presets import OptimConfig
from nas.data.audio import SourceFile
from nas.locations import location
from nas.store.artifacts import (DatasetMeta, Evaluation, ExportReport, HistoryRow, RunSummary, RuntimeReport, Scores,
                                 WandbRecord)
from nas.store.datasets import load_statistics
from nas.store.names import METRICS_FILE

_STATS_SHOWN = (("pitch (MIDI)", "pitch", False), ("pitch of notes", "pitch", True),
                ("loudness (dB)", "loudness", False), ("loudness of notes", "loudness", True))


def source_table(sources: list[SourceFile]) -> list[dict]:
    return [{"file": Path(s.path).name, "status": s.status, "reason": s.reason, "flags": ", ".join(s.flags),
             "duration_s": round(s.duration_s, 2), "rate": s.original_rate, "channels": s.channels,
             "sha256": s.sha256[:16]} for s in sources]


def dataset_card(dataset_dir: Path, meta: DatasetMeta, sources: list[SourceFile], wandb_info: WandbRecord) -> str:
    stats = load_statistics(dataset_dir)
    ok = [s for s in sources if s.status == "ok"]
    skipped = [s for s in sources if s.status != "ok"]
    lines = [
        f"# Dataset `{meta.name}` version `{meta.version}`",
        "",
        f"Folder: `{dataset_dir}`",
        "",
        "## Parameters",
        "",
        "| parameter | value |",
        "|---|---|",
        *[f"| {k} | `{v}` |" for k, v in sorted(meta.parameters.items())],
        "",
        "## Contents",
        "",
        f"- sources: {len(ok)} used ({sum(s.duration_s for s in ok):.1f} s), {len(skipped)} skipped",
        f"- chunks: {meta.chunks.train} train / {meta.chunks.eval} eval",
        f"- examples: {meta.counts.train} train / {meta.counts.eval} eval "
        f"({meta.example_secs} s, hop {meta.hop_secs} s)",
        f"- {meta.pitch.describe(meta.crepe)}, "
        f"{meta.frame_rate} frames/s, {'centred' if meta.centered else 'same'} padding",
        "",
        "## Statistics (ddsp)",
        "",
        "| frames | mean | std | mean of each example's min | mean of each example's max |",
        "|---|---|---|---|---|",
        *[f"| {label} | {m.mean:.3f} | {m.std:.3f} | {m.mean_min:.3f} | {m.mean_max:.3f} |"
          for label, m in ((label, stats.of(quantity, notes)) for label, quantity, notes in _STATS_SHOWN)],
        "",
        "## Sources",
        "",
        "| file | sha256 | seconds | status |",
        "|---|---|---|---|",
        *[f"| {as_text(Path(s.path).name)} | `{s.sha256[:16]}` | {s.duration_s:.1f} | "
          f"{s.status}{': ' + as_text(s.reason) if s.reason else ''} |" for s in sources],
        "",
        "## Weights & Biases",
        "",
        _wandb_line(wandb_info),
    ]
    return "\n".join(lines)


def _wandb_line(info: WandbRecord) -> str:
    if info.url:
        return f"Artifact `{info.artifact}`: [{info.url}]({info.url})"
    if info.mode == "offline":
        return f"Artifact `{info.artifact}` logged offline in `{info.run_dir}` (upload with `wandb sync`)"
    if info.error:
        return f"Upload failed, dataset kept locally: {info.error}"
    return "W&B disabled for this dataset"


def model_card(summary: RunSummary, wandb_info: WandbRecord, loss_plot: Path) -> str:
    """The run card: what was trained on what, how far, with which result."""
    final, model = summary.final, summary.model
    decoder = (f"dilated CNN, {model.channels} channels, {model.stacks} x {list(model.dilations)}"
               if model.decoder == "dilated-cnn" else
               f"GRU {model.rnn_units}, FC {model.fc_units} x {model.fc_layers}")
    lines = [
        f"# Model `{summary.model_version}`",
        "",
        f"- preset: **{summary.preset}** ({decoder}); decoder parameters: **{summary.decoder_parameters:,}**",
        f"- synth: {model.n_harmonics} harmonics + {model.n_noise_bands} noise bands, "
        f"trainable reverb of {model.reverb_length} taps",
        f"- dataset: `{summary.dataset.name}` version `{summary.dataset.version}`",
        f"- recipe: **{summary.recipe or '-'}**{_optim_line(summary.optim)}",
        f"- steps: {summary.step}{_budget(summary)}",
        f"- spectral loss: eval {_number(final.initial_eval_loss, '{:.3f}')} at step 0 -> "
        f"**{_number(final.eval_loss, '{:.3f}')}** (ddsp's); last train {_number(final.loss, '{:.3f}')}"
        + (f" (log magnitudes floored at {summary.loss.log_floor:g})" if summary.loss and summary.loss.log_floor
           else ""),
        f"- run folder: `{summary.run_dir}`",
        "",
        "## Weights & Biases",
        "",
        _wandb_run_line(wandb_info, "the model", f"model artifact `{wandb_info.artifact}`"
                        if wandb_info.artifact else "no model artifact"),
        "",
        "## Loss curve",
        "",
        f"![loss curve]({data_uri(loss_plot)})" if loss_plot.exists() else "(no plot)",
    ]
    return "\n".join(lines)


def _budget(summary: RunSummary) -> str:
    trained = f" in {summary.trained_s / 60:.1f} minutes of training" if summary.trained_s is not None else ""
    return trained + (f", under a budget of {summary.budget_minutes:g} minutes" if summary.budget_minutes else "")


def _optim_line(optim: OptimConfig | None) -> str:
    if optim is None:  # not recorded by the nas that trained it
        return ""
    warmup = f", {optim.warmup_steps}-step warm-up" if optim.warmup_steps else ""
    decay = (f"cosine over {optim.decay_steps} steps" if optim.schedule == "cosine" else
             f"x{optim.decay_rate} every {optim.decay_steps} steps")
    return f" (Adam {optim.learning_rate:g}{warmup}, {decay}, batch {optim.batch_size}, clip {optim.clip_norm:g})"


def _wandb_run_line(info: WandbRecord, kept: str, artifact: str = "") -> str:
    """Where a W&B run went; `kept`: what stays on disk if W&B failed."""
    if info.error:
        return f"W&B failed, {kept} is kept locally: {info.error}"
    if info.url:
        return f"Run: [{info.url}]({info.url})" + (f"; {artifact}" if artifact else "")
    if info.mode == "disabled":
        return "W&B disabled"
    if not info.run_dir:  # e.g. a model trained outside the `train` flow
        return "No W&B run recorded"
    return f"Logged offline in `{info.run_dir}` ({artifact + '; ' if artifact else ''}upload with `wandb sync`)"


def data_uri(png: Path) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()


def as_text(value: str) -> str:
    """A name from outside (a file's name, a decoder's reason) as text in a Markdown card: its
    HTML shown, not run, and its bars kept from splitting the table's cells."""
    return html.escape(value).replace("|", "\\|")


def table_cell(value):
    """A value for a Prefect table artifact (JSON has no NaN)."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 5)
    return value


def _number(value, pattern: str) -> str:
    return pattern.format(value) if value is not None and value == value else "n/a"


def evaluation_card(result: Evaluation, wandb_info: WandbRecord, report: Path) -> str:
    """Which model was judged on which data, the scores, regressions, where to listen."""
    m, dataset = result.metrics, result.dataset
    regression = (f"**Regression** against evaluation `{result.previous_eval_id}`: {'; '.join(result.regressions)}"
                  if result.regression else f"No regression (previous: `{result.previous_eval_id or 'none'}`)")
    return "\n".join([
        f"# Evaluation of `{result.model_version}`",
        "",
        f"- dataset: `{dataset.name}` version `{dataset.version}` ({dataset.split} split, {m.examples} examples)",
        f"- evaluation: `{result.eval_id}` at {result.created}",
        f"- {regression}",
        "",
        *_score_table(m, result.previous_model),
        "",
        f"Listening report: `{report}` (open in a browser: original and resynthesis side by side)",
        "",
        f"Metrics: `{location(result.dir) / METRICS_FILE}`",
        "",
        "## Weights & Biases",
        "",
        _wandb_run_line(wandb_info, "the evaluation"),
    ])


def _score_table(m: Scores, previous: HistoryRow | None) -> list[str]:
    """This model's scores, beside those of the model before it on this dataset."""
    rows = [("multi-scale spectral loss", "spectral_loss", "{:.3f}"),
            (f"f0 error, mean abs cents ({m.confident_frames} confident frames)", "f0_mae_cents", "{:.1f}"),
            ("raw pitch accuracy (50 cents)", "rpa", "{:.3f}"),
            ("loudness error, mean abs dB", "loudness_mae_db", "{:.2f}")]
    if not previous:
        return ["| metric | value |", "|---|---|",
                *(f"| {label} | {_number(getattr(m, key), p)} |" for label, key, p in rows)]
    return [f"| metric | this model | previous model `{previous.model_version}` |", "|---|---|---|",
            *(f"| {label} | {_number(getattr(m, key), p)} | {_number(getattr(previous, key), p)} |"
              for label, key, p in rows)]


def export_card(report: ExportReport, export_dir: Path) -> str:
    diff, loss = report.max_abs_difference, report.spectral_loss
    return "\n".join([
        f"# Exports of `{report.model_version}`",
        "",
        f"Folder: `{export_dir}`",
        "",
        "| file | bytes |",
        "|---|---|",
        *[f"| {name} | {size:,} |" for name, size in report.bytes.items()],
        "",
        f"Parity on {report.examples} {report.split} examples (max abs difference of decoder outputs vs "
        f"TensorFlow; tolerance {report.float_tolerance:g}):",
        "",
        f"- ONNX: {diff.onnx:.2e}; TFLite: {diff.tflite:.2e}; NumPy engine decoder: {diff.engine_decoder:.2e}",
        f"- engine audio vs TensorFlow audio (same noise): {diff.engine_audio_relative:.2e} of the loudest example's peak"
        + (f" (tolerance {report.engine_audio_tolerance:g})" if report.engine_audio_tolerance else ""),
        f"- int8 ONNX: spectral loss {loss.int8:.3f} vs float {loss.float_:.3f} ({loss.int8_change_pct:+.2f}%)",
    ])


def runtime_card(report: RuntimeReport) -> str:
    """An export's speed and loss change in each runtime (`<run>/runtimes.json`)."""
    return "\n".join([
        f"# Runtimes of `{report.model_version}`",
        "",
        f"One thread, batch {report.batch}, {report.seconds:g} s of the dataset's controls; medians. The whole path is "
        f"the runtime's decoder and the engine's synthesis; its spectral loss on {report.examples} examples against "
        "the engine's own decoder's.",
        "",
        "| runtime | decoder ms | decoder x real time | whole path ms | whole path x real time | loss change |",
        "|---|---|---|---|---|---|",
        *[f"| {f.runtime} | {_number(f.decoder_ms, '{:.2f}')} | {_number(f.decoder_rtf, '{:,.0f}')} | "
          f"{_number(f.path_ms, '{:.2f}')} | {_number(f.path_rtf, '{:,.0f}')} | "
          f"{_number(f.loss_change_pct, '{:+.2f}%') if not f.error else 'failed: ' + f.error} |" for f in report.runtimes],
    ])
