"""Where a run enters (the CLI, or a flow run started on its own) its dataset config is
parsed, and passed on to the subflows as a parameter (`parsed`: the validated config's
dump), so one run reads and validates the YAML once and every flow run shows what it used."""

from __future__ import annotations

from pathlib import Path

from nas.config import DatasetConfig, load_config


def dataset_config(config_path: str, parsed: dict | None = None) -> tuple[DatasetConfig, Path]:
    """(config, the folder its relative audio globs start from): the one an entry parsed, or read now."""
    if parsed is None:
        return load_config(config_path)
    return DatasetConfig.model_validate(parsed), Path(config_path).resolve().parent


def config_dump(config: DatasetConfig) -> dict:
    """What a parent flow passes its subflows as `parsed`."""
    return config.model_dump(mode="json")
