"""Time to quality: what a preset and recipe reach, against training steps and wall-clock.

    .venv/bin/python benchmarks/quality.py \
        --dataset violin=nas-data/demo-violin/<version> --dataset flute=nas-data/demo-flute/<version> \
        --run cnn-tiny:thesis:2000 --run cnn-tiny:fast:2000 [--eval-every 250] [--out quality]

A run may carry settings and a label: `--run cnn-tiny:thesis:500:as-thesis:model.output_norm=true,model.reverb_scale=1`
(the thesis's model, as ddsp builds it) for ablations.

Every run trains with nas' own Trainer and input pipeline (what `nas train` runs), from
seed 0, on each dataset in turn. At every `--eval-every` steps, with the clock stopped:
- eval spectral loss: ddsp's multi-scale loss (ddsp 3.7's, as `nas evaluate` reports it)
  on the eval split in whole batches (the remainder left out), and the same loss with log
  magnitudes floored at 1e-5 (ddsp's code of 2021; a re-implementation may floor too);
- loudness error: mean absolute A-weighted loudness difference (dB) of resynthesis and
  original on the eval split, as `nas evaluate` scores it;
- resynthesis f0: CREPE (the dataset's model and Viterbi setting) on the resynthesis of
  the first eval batch, RPA and mean cents error on the confident frames.
The wall-clock is the training steps' own time (the first step's tracing included). At
the end the model is saved and scored by `nas evaluate`'s code on the whole eval split,
which writes its listening report. Curves (from the first evaluation after step 0) go to `benchmarks/results/<out>.png`, rows and
final scores to `benchmarks/results/<out>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import yaml

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks/results"
sys.path.insert(0, str(REPO))


FLOOR = 1e-5


def _scores(trainer, eval_set, metadata, truth: dict, floored) -> dict:
    """truth: the originals' tracks of the first eval batch by example, filled on first use;
    floored: the spectral loss with log magnitudes floored at FLOOR."""
    import numpy as np

    from nas.data.loudness import compute_loudness
    from nas.evaluation.metrics import pitch_scores, resynthesis_tracks

    losses, floored_losses, weights, loudness, pitch_rows = [], [], [], [], []
    frames = (metadata.sample_rate, metadata.frame_rate)
    for index, batch in enumerate(eval_set):
        loss, audio = trainer.loss_and_audio(batch)
        losses.append(loss)
        floored_losses.append(float(floored(batch["audio"], audio)))
        weights.append(len(audio))
        for i, (original, synth) in enumerate(zip(batch["audio"].numpy(), audio)):
            reference = compute_loudness(original, *frames, centered=metadata.centered)
            loudness.append(np.mean(np.abs(compute_loudness(synth, *frames, centered=metadata.centered) - reference)))
            if index == 0:
                if i not in truth:
                    truth[i] = resynthesis_tracks(original, metadata)
                tracks = resynthesis_tracks(synth, metadata)
                pitch_rows.append(pitch_scores(truth[i]["f0_hz"], truth[i]["f0_confidence"], tracks["f0_hz"]))
    row = {"eval_loss": float(np.average(losses, weights=weights)),
           "eval_loss_floored": float(np.average(floored_losses, weights=weights)),
           "loudness_mae_db": float(np.mean(loudness))}
    if pitch_rows:
        frames = sum(r["confident_frames"] for r in pitch_rows)
        row["rpa"] = sum(r["rpa_hits"] for r in pitch_rows) / frames
        row["f0_mae_cents"] = sum(r["f0_abs_cents_sum"] for r in pitch_rows) / frames
    return row


def train_and_score(dataset_dir: Path, preset: str, recipe: str, steps: int, eval_every: int, root: Path,
                    settings: dict) -> dict:
    import tensorflow as tf

    from nas.config.presets import LossConfig, train_config
    from nas.evaluation.evaluate import evaluate
    from nas.models.synthesizer import make_spectral_loss
    from nas.store.datasets import load_metadata, load_statistics
    from nas.store.runs import run_layout
    from nas.training import data
    from nas.training.loop import Trainer, save_model
    from nas.training.metrics import MetricsLog

    metadata = load_metadata(dataset_dir)
    config = train_config(preset, {"steps": steps, **settings}, recipe)
    layout = run_layout(root, metadata, config)
    tf.keras.utils.set_random_seed(config.seed)
    trainer = Trainer(config, metadata, statistics=load_statistics(dataset_dir))
    train_examples = data.examples(dataset_dir, "train", metadata, trainer.preprocessor)
    eval_examples = data.examples(dataset_dir, "eval", metadata, trainer.preprocessor)
    eval_set = data.eval_batches(eval_examples, metadata.counts.eval, config.optim.batch_size, 1000)
    batches = data.training_batches(train_examples, config.optim.batch_size, config.seed)
    iterator = iter(trainer.strategy.experimental_distribute_dataset(batches))
    rows, clock, truth = [], 0.0, {}
    floored = make_spectral_loss(LossConfig(log_floor=FLOOR))
    metrics = MetricsLog(layout.metrics, 0)

    def record(step: int) -> None:
        row = {"step": step, "seconds": clock, **_scores(trainer, eval_set, metadata, truth, floored)}
        rows.append(row)
        metrics.add({"step": step, "eval_loss": row["eval_loss"], "elapsed_s": clock})
        print(f"  {metadata.name} {preset}/{recipe} step {step}/{steps} ({clock:.0f} s): eval loss "
              f"{row['eval_loss']:.3f} (floored {row['eval_loss_floored']:.3f}), "
              f"loudness {row['loudness_mae_db']:.2f} dB, RPA {row['rpa']:.3f}", flush=True)

    record(0)
    for step in range(1, steps + 1):
        start = time.perf_counter()
        loss, _ = trainer.train_step(iterator)
        float(loss)  # waits for the step
        clock += time.perf_counter() - start
        if step % eval_every == 0 or step == steps:
            record(step)
    layout.dir.mkdir(parents=True, exist_ok=True)
    metrics.write()
    summary = save_model(trainer, layout, metadata, config, metrics, steps)
    final = evaluate(layout.model, dataset_dir, layout.evaluations, layout.dir / "history.jsonl")
    return {"dataset": metadata.name, "dataset_version": metadata.version, "preset": preset, "recipe": recipe,
            "steps": steps, "settings": settings, "decoder_parameters": summary.decoder_parameters, "curve": rows,
            "final": final.metrics.model_dump(), "report": str(final.report),
            "steps_per_s": steps / clock}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = (("eval_loss", "eval spectral loss (ddsp 3.7)"),
                ("eval_loss_floored", f"eval spectral loss, log floored at {FLOOR:g}"),
                ("loudness_mae_db", "loudness error (dB)"), ("rpa", "resynthesis f0 RPA"))
    datasets = sorted({r["dataset"] for r in results})
    fig, axes = plt.subplots(len(datasets) * 2, len(measures), figsize=(15, 4.2 * len(datasets) * 2), squeeze=False)
    for d, dataset in enumerate(datasets):
        for against, xlabel in enumerate(("step", "seconds")):
            for m, (key, label) in enumerate(measures):
                ax = axes[2 * d + against, m]
                later = []  # the untrained model's step-0 scores are off the scale of the rest
                for r in (r for r in results if r["dataset"] == dataset):
                    rows = [row for row in r["curve"][1:] if key in row]  # runs before the floored measure lack it
                    later += [row[key] for row in rows]
                    ax.plot([row[xlabel] for row in rows], [row[key] for row in rows], marker=".",
                            label=f"{r['preset']} / {r.get('label', r['recipe'])}")
                ax.set(title=f"{dataset}: {label}", xlabel="training step" if xlabel == "step" else
                       "training wall-clock (s, 2 CPU cores)", ylabel=label)
                ax.grid(alpha=0.3)
                ax.set_xlim(left=0)
                if later and key != "rpa":
                    ax.set_ylim(min(later) * 0.95, max(later) * 1.05)
                ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    from nas.store.artifacts import Scores

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", action="append", required=True, metavar="NAME=DIR")
    parser.add_argument("--run", action="append", required=True, metavar="PRESET:RECIPE:STEPS")
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--out", default="quality")
    parser.add_argument("--root", type=Path, default=Path("/tmp/nas-quality"),
                        help="data root for the runs' folders (models, evaluations, listening reports)")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.out}.json"
    results = json.loads(out.read_text())["runs"] if out.exists() else []
    for spec in args.run:
        preset, recipe, steps, *extra = spec.split(":")
        label = extra[0] if extra else recipe
        settings = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in extra[1].split(","))} \
            if len(extra) > 1 else {}
        for named in args.dataset:
            name, directory = named.split("=", 1)
            print(f"{name}: {preset} / {label}, {steps} steps", flush=True)
            result = train_and_score(Path(directory), preset, recipe, int(steps), args.eval_every, args.root, settings)
            result["label"] = label
            results = [r for r in results if (r["dataset"], r["preset"], r.get("label", r["recipe"]), r["steps"]) !=
                       (result["dataset"], preset, label, int(steps))] + [result]
            out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "runs": results}, indent=1) + "\n")
            plot(results, RESULTS / f"{args.out}.png")
            print(f"{name} {preset}/{label} {steps} steps: {Scores.model_validate(result['final']).line()}; "
                  f"{result['steps_per_s']:.2f} steps/s; report {result['report']}", flush=True)


if __name__ == "__main__":
    main()
