"""Registering a new dataset: a folder of audio -> a validated `dataset_configs/<name>.yaml`
(its deployment in prefect.yaml is `flows/deployments.py`'s)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from .atomic import atomic_path
from .config import ConfigError, find_audio, validate_config
from .locations import check_reachable, is_remote, location


def _nested(settings: dict) -> dict:
    """`crepe.capacity: tiny` -> {"crepe": {"capacity": "tiny"}}; the keys of
    `training.overrides` are themselves dotted (`training.overrides.optim.batch_size`)."""
    tree: dict = {}
    for key, value in settings.items():
        head, _, rest = key.partition("training.overrides.")
        parts = key.split(".") if head or not rest else ["training", "overrides", rest]
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{key}: {part} is not a section")
        node[parts[-1]] = value
    return tree


def _audio_glob(audio_dir: Path, config_dir: Path) -> str:
    """Relative to the config's folder when both live in one project, so the pair can move."""
    project = config_dir.parent
    if not is_remote(audio_dir) and audio_dir.is_relative_to(project):
        return os.path.relpath(audio_dir, config_dir)
    return str(audio_dir)


def register_dataset(audio_dir: Path, name: str, configs_dir: Path, settings: dict | None = None,
                     force: bool = False) -> Path:
    """Write `<configs_dir>/<name>.yaml` for the audio under `audio_dir` (searched
    recursively) with `settings` (dotted keys) over the defaults; validated before it is
    published, so a bad name, setting or folder leaves nothing behind."""
    audio_dir = location(audio_dir)
    audio_dir = audio_dir if is_remote(audio_dir) else audio_dir.absolute()
    configs_dir = Path(configs_dir).absolute()
    check_reachable(audio_dir)
    if not audio_dir.is_dir():
        raise ConfigError(f"{audio_dir}: not a folder of audio")
    path = configs_dir / f"{name}.yaml"
    if path.exists() and not force:
        raise ConfigError(f"{path}: a dataset config of that name exists (choose another --name, or --force)")
    raw = {"name": name, "audio": [_audio_glob(audio_dir, configs_dir)], **_nested(settings or {})}
    text = (f"# Registered with `nas register {audio_dir} --name {name}`. Schema: nas/config/.\n"
            + yaml.safe_dump(raw, sort_keys=False))
    config = validate_config(raw, path)  # the schema's own errors, naming the key
    if config.name != name:
        raise ConfigError(f"{path}: name: {config.name!r} differs from --name {name!r}")
    find_audio(config, configs_dir)  # a folder without audio is an error now, not at preparation
    configs_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
