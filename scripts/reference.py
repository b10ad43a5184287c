"""The docs' reference pages, generated from the code when the site is built (docs/hooks.py),
so that they cannot drift from it: every config key (the pydantic models' fields and
descriptions), every command and flag (the CLI's parser), every preset and recipe, and every
file a data root holds (the layouts of `nas/store` and their docstrings)."""

from __future__ import annotations

import argparse
import inspect
import json
import typing
from pathlib import Path

from pydantic import BaseModel

from flows.cli.main import build_parser
from nas.config import DatasetConfig
from nas.config.presets import PRESETS, RECIPES, TrainConfig
from nas.store import datasets, runs, sweeps


def _type(annotation) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return " or ".join(f"`{v}`" for v in typing.get_args(annotation))
    text = getattr(annotation, "__name__", None) if typing.get_origin(annotation) is None else None
    return f"`{text or str(annotation).replace('typing.', '').replace(' | ', ' or ')}`"


def _cell(text) -> str:
    return str(text).replace("\n", " ").replace("|", "\\|")


def fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, description) of every leaf setting of a model."""
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
            rows += fields(annotation, f"{key}.")
            continue
        default = ("required" if field.is_required() else
                   f"`{json.dumps(field.get_default(call_default_factory=True), default=str)}`")
        rows.append((key, _type(annotation), default, field.description or ""))
    return rows


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header),
            *(f"| `{key}` | " + " | ".join(_cell(c) for c in rest) + " |" for key, *rest in rows)]


def config_page() -> str:
    return "\n".join([
        "# Config reference", "",
        "Generated from `nas/config` when the site is built. A dataset config is YAML with these keys; "
        "unknown keys are refused.", "",
        "## Dataset config", "",
        *_table(fields(DatasetConfig), ("key", "type", "default", "description")), "",
        "## Training settings", "",
        "What `training.overrides` in a config, `--set KEY=VALUE` on `nas train`, `nas run` and `nas sweep`, and "
        "a flow's `training` parameter may set; the defaults are the `cnn-tiny` preset's and the `thesis` recipe's.",
        "",
        *_table([r for r in fields(TrainConfig) if r[0] != "model"], ("key", "type", "default", "description")),
    ]) + "\n"


def commands(parser: argparse.ArgumentParser | None = None) -> dict[str, argparse.ArgumentParser]:
    parser = parser or build_parser()
    (group,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(group.choices)


def flags(command: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in command._actions if not isinstance(a, argparse._HelpAction)]


def cli_page() -> str:
    parser = build_parser()
    (group,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {choice.dest: choice.help for choice in group._choices_actions}
    lines = ["# Command-line reference", "", "Generated from the parser of `flows/cli` when the site is built.", "",
             "| global flag | help |", "|---|---|",
             *(f"| `{', '.join(a.option_strings)}` | {_cell(a.help)} |" for a in flags(parser) if a.option_strings
               and a.dest != "command"), ""]
    for name, command in commands(parser).items():
        lines += [f"## `nas {name}`", "", _cell(helps.get(name, "")), "", "```", command.format_usage().strip(), "```",
                  "", "| argument | default | help |", "|---|---|---|"]
        for action in flags(command):
            spelled = ", ".join(action.option_strings) or action.dest
            default = "" if action.default in (None, False, [], argparse.SUPPRESS) else f"`{action.default}`"
            choices = f" (one of {', '.join(map(str, action.choices))})" if action.choices else ""
            lines.append(f"| `{spelled}` | {default} | {_cell(action.help or '')}{_cell(choices)} |")
        lines.append("")
    return "\n".join(lines)


def presets_page() -> str:
    base = PRESETS["cnn-tiny"].model_dump(mode="json")
    keys = sorted({k for p in PRESETS.values() for k, v in p.model_dump(mode="json").items()
                   if any(q.model_dump(mode="json")[k] != v for q in PRESETS.values())})
    lines = ["# Presets and recipes", "", "Generated from `nas/config/presets.py` when the site is built.", "",
             "## Presets", "", "Where the presets differ (`model.*`):", "",
             "| setting | " + " | ".join(f"`{n}`" for n in PRESETS) + " |", "|---|" + "---|" * len(PRESETS),
             *(f"| `model.{k}` | " + " | ".join(f"`{json.dumps(p.model_dump(mode='json')[k])}`"
                                                  for p in PRESETS.values()) + " |" for k in keys),
             "", "What they share:", "", "| setting | value |", "|---|---|",
             *(f"| `model.{k}` | `{json.dumps(v)}` |" for k, v in base.items() if k not in keys),
             "", "## Recipes", "", "Named sets of training settings over the defaults:", "",
             "| recipe | settings |", "|---|---|",
             *(f"| `{name}` | " + (", ".join(f"`{k}={v}`" for k, v in settings.items()) or "the defaults") + " |"
               for name, settings in RECIPES.items())]
    return "\n".join(lines) + "\n"


def _files(layout, folder: str) -> list[str]:
    """Every file or folder a layout names, relative to its folder, with its docstring."""
    rows = []
    for name, member in vars(type(layout)).items():
        if isinstance(member, property) and not name.startswith("_"):
            path = getattr(layout, name)
            spelled = path.name if path.parent == layout.dir else f"../{path.name}"
            rows.append(f"| `{spelled}` | `{name}` | {_cell(inspect.getdoc(member.fget) or '')} |")
    return [f"## {folder}", "", _cell(inspect.getdoc(type(layout)) or ""), "", "| file | layout property | holds |",
            "|---|---|---|", *rows, ""]


def data_root_page() -> str:
    from nas import store

    return "\n".join([
        "# What a data root holds", "", "Generated from `nas/store` when the site is built: the one module that names "
        "the data root's folders and files.", "", "```", inspect.getdoc(store), "```", "",
        *_files(datasets.DatasetFiles(Path("version")), "A dataset version: `<root>/<dataset>/<version>/`"),
        *_files(runs.RunLayout(Path("run")), "A training run: `<root>/<dataset>/runs/<run id>/`"),
        *_files(sweeps.SweepLayout(Path("sweep")), "A sweep: `<root>/sweeps/<name>-<id>/`"),
    ])


PAGES = {"reference/config.md": config_page, "reference/cli.md": cli_page, "reference/presets.md": presets_page,
         "reference/data-root.md": data_root_page}
