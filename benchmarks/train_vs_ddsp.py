"""Training steps per second: nas' training step vs ddsp's `Autoencoder` + `Trainer`.

    .venv/bin/python benchmarks/train_vs_ddsp.py --dataset nas-data/demo-violin/<version> [--repeats 3]

Same model (preset), same records, batch 8, on this CPU, in one process, interleaved
repeats; medians reported. The reference reads the records with ddsp's TFRecordProvider
and runs ddsp's own train_step (preprocessor in the model, ddsp's Harmonic, tf.function
without XLA, as the thesis trained). Variants of ours separate the changes: XLA on or
off, and ddsp's Harmonic instead of ours. Also written: an analytic count of the
floating-point work of one training step.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from record import save

REPO = Path(__file__).resolve().parents[1]


def ours(dataset_dir: Path, preset: str, batch: int, jit: bool | None, fast_harmonic: bool):
    from nas.config.presets import train_config
    from nas.store.datasets import load_metadata
    from nas.training import data
    from nas.training.loop import Trainer

    metadata = load_metadata(dataset_dir)
    config = train_config(preset, {"optim.batch_size": batch, "jit_compile": jit,
                                   "model.harmonic_synth": "matmul" if fast_harmonic else "ddsp"})
    trainer = Trainer(config, metadata)
    examples = data.examples(dataset_dir, "train", metadata, trainer.preprocessor)
    iterator = iter(trainer.strategy.experimental_distribute_dataset(data.training_batches(examples, batch, 0)))
    return lambda: float(trainer.train_step(iterator)[0])


def reference(dataset_dir: Path, preset: str, batch: int):
    import tensorflow as tf

    from nas.config.presets import train_config
    from nas.data.reader import record_provider
    from nas.models.reference import reference_autoencoder, reference_trainer
    from nas.store.datasets import load_metadata

    metadata = load_metadata(dataset_dir)
    config = train_config(preset, {"optim.batch_size": batch})
    strategy = tf.distribute.get_strategy()
    with strategy.scope():
        model = reference_autoencoder(config, metadata.sample_rate, metadata.example_secs)
        trainer = reference_trainer(model, config, strategy)
    batches = record_provider(dataset_dir, "train", metadata).get_batch(batch, shuffle=True)
    iterator = iter(trainer.distribute_dataset(batches))
    trainer.build(next(iterator))
    return lambda: float(trainer.train_step(iterator)["total_loss"])


def time_steps(step, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def step_flops(preset: str, batch: int, samples: int = 64000, frames: int = 1000) -> dict:
    """Floating-point operations of one training step, counted by hand (forward + backward).

    FFT of n points: 2.5 n log2 n real flops. Sines counted as one operation each."""
    from nas.config.presets import train_config

    model = train_config(preset).model
    fft = lambda n: 2.5 * n * math.log2(n)  # noqa: E731
    k = model.n_harmonics
    out = {}
    if model.decoder == "dilated-cnn":
        c, w = model.channels, model.kernel_size
        macs = frames * (w * 2 * c + len(model.dilations) * model.stacks * w * c * c + c * 126)
    else:
        u, h, layers = model.rnn_units, model.fc_units, model.fc_layers
        stacks = 2 * (h + (layers - 1) * h * h) if layers else 0
        gru_in = 2 * h if layers else 2
        gru = 3 * (gru_in * u + u * u)
        out_in = (2 * h if layers else 2) + u
        head_in = h if layers else out_in
        macs = frames * (stacks + gru + (out_in * h + (layers - 1) * h * h if layers else 0) + head_in * 126)
    out["decoder"] = 3 * 2 * macs * batch  # forward + two backward products
    # Harmonic: basis sines, and the per-frame product forward and in the backward pass.
    out["harmonic"] = batch * samples * k * (1 + 2 * 2 * 2)
    # Filtered noise: irfft of the 65 bands per frame, one FFT convolution (x3 with backward).
    noise_fft = 2 ** math.ceil(math.log2(samples // frames + 2 * (model.n_noise_bands - 1)))
    out["noise"] = 3 * batch * frames * (fft(2 * (model.n_noise_bands - 1)) + 2 * fft(noise_fft))
    reverb_fft = 2 ** math.ceil(math.log2(samples + model.reverb_length))
    out["reverb"] = 3 * batch * 3 * fft(reverb_fft)
    loss = 0
    for n in train_config(preset).loss.fft_sizes:
        hop = n // 4
        n_frames = math.ceil(samples / hop)
        loss += n_frames * fft(n)
    out["spectral_loss"] = batch * loss * (1 + 2)  # target, synthesis, backward of synthesis
    out["total"] = sum(out.values())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, type=Path, help="a published dataset folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    import tensorflow as tf

    variants = {
        ("cnn-tiny", "ddsp Autoencoder + Trainer"): lambda: reference(args.dataset, "cnn-tiny", args.batch),
        ("cnn-tiny", "nas (default: XLA)"): lambda: ours(args.dataset, "cnn-tiny", args.batch, None, True),
        ("cnn-tiny", "nas, no XLA"): lambda: ours(args.dataset, "cnn-tiny", args.batch, False, True),
        ("cnn-tiny", "nas (XLA), ddsp's Harmonic"): lambda: ours(args.dataset, "cnn-tiny", args.batch, True, False),
        ("full", "ddsp Autoencoder + Trainer"): lambda: reference(args.dataset, "full", args.batch),
        ("full", "nas (default: no XLA)"): lambda: ours(args.dataset, "full", args.batch, None, True),
        ("full", "nas, XLA"): lambda: ours(args.dataset, "full", args.batch, True, True),
    }
    steps = {}
    for name, build in variants.items():
        print(f"building {name} ...", flush=True)
        step = build()
        steps[name] = step
    rates: dict = {name: [] for name in variants}
    for repeat in range(args.repeats):
        for name, step in steps.items():
            slow = "ddsp" in name[1] or "Harmonic" in name[1] or name[0] == "full"
            rate = time_steps(step, warmup=2 if repeat == 0 else 1, steps=4 if slow else 15)
            rates[name].append(rate)
            print(f"repeat {repeat + 1}: {name[0]:9s} {name[1]:30s} {rate:7.3f} steps/s", flush=True)
    results = {"batch": args.batch, "repeats": args.repeats, "tensorflow": tf.__version__, "rows": []}
    for (preset, variant), values in rates.items():
        median = statistics.median(values)
        base = statistics.median(rates[(preset, "ddsp Autoencoder + Trainer")])
        results["rows"].append({"preset": preset, "variant": variant, "steps_per_s": median,
                                "ms_per_step": 1000 / median, "speedup_vs_ddsp": median / base,
                                "all_steps_per_s": values})
    results["flops_per_step"] = {p: step_flops(p, args.batch) for p in ("cnn-tiny", "full")}
    print("\n| preset | variant | steps/s | ms/step | vs ddsp |\n|---|---|---|---|---|")
    for row in results["rows"]:
        print(f"| {row['preset']} | {row['variant']} | {row['steps_per_s']:.3f} | {row['ms_per_step']:.0f} | "
              f"{row['speedup_vs_ddsp']:.2f}x |")
    for preset, flops in results["flops_per_step"].items():
        print(preset, {k: f"{v / 1e9:.2f} GFLOP" for k, v in flops.items()})
    save("train_vs_ddsp", results)


if __name__ == "__main__":
    main()
