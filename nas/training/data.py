"""The input pipeline: a prepared dataset's records, read by ddsp's own TFRecordProvider
with the metadata in its dataset.json, preprocessed once and cached in memory."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from nas.data.reader import record_provider
from nas.models.synthesizer import preprocess
from nas.store.artifacts import DatasetMeta


def examples(dataset_dir: Path, split: str, metadata: DatasetMeta, preprocessor) -> tf.data.Dataset:
    """Unbatched, preprocessed examples of one split in record order (deterministic)."""
    if metadata.counts.of(split) == 0:
        raise ValueError(f"{dataset_dir}: the {split} split has no examples")
    dataset = record_provider(dataset_dir, split, metadata).get_dataset(shuffle=False)
    # Traced without autograph (here and in the trainer's functions): the code has no
    # tensor-dependent Python control flow, and rewriting ddsp's modules cost seconds per process.
    dataset = dataset.map(tf.autograph.experimental.do_not_convert(lambda example: preprocess(preprocessor, example)),
                          num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.cache()


def training_batches(dataset: tf.data.Dataset, batch_size: int, seed: int, skip_batches: int = 0,
                     shuffle_buffer: int = 10_000) -> tf.data.Dataset:
    """Endless shuffled batches; the order depends only on the seed, so a resumed run skips
    the batches it already trained on and sees the same data an uninterrupted run would."""
    dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
    dataset = dataset.batch(batch_size, drop_remainder=True).skip(skip_batches)
    return dataset.prefetch(tf.data.AUTOTUNE)


def eval_batches(dataset: tf.data.Dataset, count: int, batch_size: int, max_batches: int) -> tf.data.Dataset:
    """At most `max_batches` batches of one size (the remainder is left out): ddsp's noise
    synth needs a static batch size, so every other size would trace the model again."""
    return dataset.batch(min(batch_size, count), drop_remainder=True).take(max_batches)
