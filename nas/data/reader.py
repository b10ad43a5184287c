"""Prepared records read back: by ddsp's own reader (training, evaluation), and in the
same order without TensorFlow (the statistics)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import ddsp_api
from ..locations import location
from ..store.artifacts import DatasetMeta
from ..store.cache import local_records
from .records import file_pattern, parse
from .tfrecord import read_records

DDSP_CYCLE_LENGTH = 40  # TFRecordProvider interleaves this many files, one record from each in turn


def record_provider(dataset_dir: Path, split: str, metadata: DatasetMeta):
    """ddsp's own TFRecordProvider over one split, configured from dataset.json (a bucket's
    records are read from this machine's staged copy: TensorFlow 2.21 cannot open s3://),
    also reading `power_db` where the version has it (ddsp's reader leaves it out)."""
    dataset_dir = local_records(location(dataset_dir))
    data = ddsp_api.data()
    secs = metadata.example_secs
    return (_power_provider_class() if metadata.power else data.TFRecordProvider)(
        file_pattern=str(dataset_dir / file_pattern(split)),
        # ddsp multiplies seconds by the rate for a shape: whole seconds must be ints.
        example_secs=int(secs) if float(secs).is_integer() else secs,
        sample_rate=metadata.sample_rate,
        frame_rate=metadata.frame_rate,
        centered=metadata.centered,
    )


def _power_provider_class():
    import tensorflow as tf

    class PowerRecordProvider(ddsp_api.data().TFRecordProvider):
        @property
        def features_dict(self):
            return {**super().features_dict,
                    "power_db": tf.io.FixedLenFeature([self._feature_length], dtype=tf.float32)}

    return PowerRecordProvider


def read_split(dataset_dir: Path, split: str) -> Iterator[dict[str, np.ndarray]]:
    """The examples of one split in the order of ddsp's `get_dataset(shuffle=False)`: the
    files sorted, interleaved as tf.data's `interleave` does (a cycle of 40 slots, one
    record per turn; an exhausted slot takes the next file on its next turn)."""
    files = iter(sorted(location(dataset_dir).glob(file_pattern(split)), key=str))
    slots: list[Iterator[bytes] | None] = [None] * DDSP_CYCLE_LENGTH
    files_left, index = True, 0
    while files_left or any(slots):
        if slots[index] is None and files_left:
            path = next(files, None)
            if path is None:
                files_left = False
            else:
                slots[index] = read_records(path)
                continue  # the new file gives its first record on this same turn
        elif slots[index] is not None:
            record = next(slots[index], None)
            if record is not None:
                yield parse(record)
            else:
                slots[index] = None
        index = (index + 1) % DDSP_CYCLE_LENGTH
