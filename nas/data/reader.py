"""Prepared records read back by ddsp's own reader, as training, evaluation and the statistics do."""

from __future__ import annotations

from pathlib import Path

from .. import ddsp_api
from ..store.artifacts import DatasetMeta
from .records import file_pattern


def record_provider(dataset_dir: Path, split: str, metadata: DatasetMeta):
    """ddsp's own TFRecordProvider over one split, configured from dataset.json."""
    data = ddsp_api.data()
    secs = metadata.example_secs
    return data.TFRecordProvider(
        file_pattern=str(dataset_dir / file_pattern(split)),
        # ddsp multiplies seconds by the rate for a shape: whole seconds must be ints.
        example_secs=int(secs) if float(secs).is_integer() else secs,
        sample_rate=metadata.sample_rate,
        frame_rate=metadata.frame_rate,
        centered=metadata.centered,
    )
