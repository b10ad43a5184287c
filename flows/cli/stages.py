"""The stages of one dataset's DAG: prepare, train, run (all of them), evaluate, export."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from pydantic import ValidationError

from flows.cli.common import (add_config, add_data_root, check_audio, parse_overrides, prefect_server, refusing,
                              ui_hint)
from nas.config import ConfigError, load_config
from nas.config.presets import PRESETS, RECIPES, resolve_training
from nas.export import TARGETS
from nas.locations import (check_reachable, endpoint_origin, fullest, is_remote, is_url, out_of_space,
                           resolve_root, unreachable)
from nas.play.ddsp_vst import STATE_SIZE, RuleError, check_rule
from nas.play.neutone import NeutoneError
from nas.play.neutone import check as check_neutone
from nas.store.runs import load_model_summary


def _training_arguments(command, steps: bool = True) -> None:
    """The training settings over the config's; evaluate and export take them (but the step
    budget, which is not part of a run's id) to find the run they make."""
    add_config(command)
    command.add_argument("--preset", choices=list(PRESETS), help="model preset (default: the config's training.preset)")
    if steps:
        command.add_argument("--steps", type=int, help="train until this step (default: the config's training.steps)")
        command.add_argument("--minutes", type=float, help="a wall-time budget: stop training when it is spent, if "
                             "that comes before the last step (default: the config's training.minutes, or none)")
    command.add_argument("--recipe", choices=list(RECIPES), help="training recipe (default: the config's "
                         "training.recipe): thesis (Adam 3e-4, ddsp's decay) or fast (3e-3, warm-up, cosine)")
    command.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a setting of the preset, e.g. --set optim.learning_rate=1e-3 (repeatable)")


def add_commands(commands) -> None:
    _command(commands, "prepare", "prepare a dataset: features, TFRecords, statistics, W&B", _prepare,
             "where datasets are written")
    train = _command(commands, "train", "train a model on the dataset a config prepares", _train,
                     "where datasets and runs are written", training="all")
    train.add_argument("--dataset-version", help="a published dataset version (default: prepare the config now)")
    run = _command(commands, "run", "the whole DAG for a dataset: prepare, train, evaluate, export", _pipeline,
                   "where datasets and runs are written", training="all")
    run.add_argument("--reevaluate", action="store_true", help="score the model again even if it was scored")
    evaluate = _command(commands, "evaluate", "score a trained model on a dataset; report, history, W&B", _evaluate,
                        "where datasets and runs are", training="model")
    evaluate.add_argument("--model-version", help="e.g. cnn-tiny-0123456789ab-500 (default: the config's own model, "
                          "the one `nas run` with the same config and settings trains)")
    evaluate.add_argument("--dataset-version", help="a published dataset version (default: the latest)")
    export = _command(commands, "export", "export a trained model: ONNX, TFLite, int8 ONNX, CPU engine; or for "
                      "DDSP-VST or Neutone FX", _export, "where datasets and runs are", training="model")
    export.add_argument("--model-version", help="default: the config's own model, the one `nas run` with the same "
                        "config and settings trains")
    export.add_argument("--target", choices=TARGETS, default="nas",
                        help="nas: ONNX, TFLite, int8 ONNX and the CPU engine's weights; ddsp-vst: one .tflite "
                             "for the DDSP-VST plugin, for models of --preset ddsp-vst; neutone: model.nm for "
                             "Neutone FX, through neutone-sdk's checks (needs `make neutone-env`) (default: nas)")


def _command(commands, name: str, help: str, flow, data_root_help: str, training: str | None = None):
    """`training`: "all" for the commands that train, "model" for those that find the run a
    training makes."""
    command = commands.add_parser(name, help=help)
    if training:
        _training_arguments(command, steps=training == "all")
    else:
        add_config(command)
    add_data_root(command, data_root_help)
    command.set_defaults(run=_stage(flow))
    return command


def _stage(flow):
    """A command that checks the config (and the model to use) before any flow starts, then
    runs `flow(args, parsed config, training settings, recipe)` against a Prefect server."""
    def run(args) -> int:
        trains = args.command in ("train", "run")
        with refusing(ConfigError, ValueError, ValidationError):
            check_reachable(resolve_root(args.data_root))
            config, base = load_config(args.config)
            if args.command == "prepare" or trains and not getattr(args, "dataset_version", None):
                check_audio(args.config, config, base)
            training = _training_settings(args) if hasattr(args, "preset") else None
            recipe = None if training is None else resolve_training(config.training, training)
        with refusing(FileNotFoundError, RuleError, NeutoneError):  # say so before a flow starts
            if args.command in ("evaluate", "export"):
                _choose_model(args, config, training)
        with prefect_server() as ready:
            if not ready:
                return 1
            try:
                flow(args, config.model_dump(mode="json"), training, recipe)
            except Exception as error:
                if out_of_space(error):
                    _no_space(args.data_root)
                    return 1
                buckets = [u for u in [args.data_root, *config.audio] if is_url(u)]
                if not (buckets and unreachable(error)):
                    raise
                print(f"nas: {', '.join(buckets)}: {endpoint_origin()} stopped answering ({_cause(error)}), still "
                      f"after retries with back-off; what is published is kept: run the command again to go on",
                      file=sys.stderr)
                return 1
        return 0
    return run


def _choose_model(args, config, training: dict) -> None:
    """The model evaluate or export takes: --model-version, else the config's own; named on
    the console and passed to the flow as a model version. A target the model cannot meet is
    refused here."""
    from flows.evaluate import resolve_model

    _, layout = resolve_model(config, args.model_version, getattr(args, "dataset_version", None),
                              resolve_root(args.data_root), training)
    summary = load_model_summary(layout.model)
    chosen = "given by --model-version" if args.model_version else "the config's own"
    print(f"model {summary.model_version} ({chosen}): {layout.model}")
    args.model_version = summary.model_version
    if getattr(args, "target", None) == "ddsp-vst":
        check_rule(summary.model, summary.sample_rate)
    elif getattr(args, "target", None) == "neutone":
        check_neutone(summary.model)


def _no_space(data_root: str) -> None:
    """The one line of a disk that filled: which of the data root and the temporary folder is
    fuller, and that nothing half-written is taken as done (datasets, models, evaluations and
    exports are published whole or not at all)."""
    root = resolve_root(data_root)
    places = ([] if is_remote(root) else [str(root)]) + [tempfile.gettempdir()]  # on one disk: the data root
    print(f"nas: {fullest([Path(p) for p in places])}: no space left on the device; nothing half-written is "
          f"published: free some space and run the command again to go on", file=sys.stderr)


def _cause(error: BaseException) -> str:
    """The innermost exception's type: its text can name the endpoint, which no line of ours shows."""
    while error.__cause__ or error.__context__:
        error = error.__cause__ or error.__context__
    return type(error).__name__


def _training_settings(args) -> dict:
    """The command line's settings over the config's training section."""
    settings = {"preset": args.preset, "steps": getattr(args, "steps", None), "minutes": getattr(args, "minutes", None),
                "recipe": args.recipe}
    return {**{k: v for k, v in settings.items() if v}, **parse_overrides(args.overrides)}


def _prepare(args, parsed: dict, training, recipe) -> None:
    from flows.prepare import prepare as prepare_flow

    print(prepare_flow(args.config, args.data_root, parsed))


def _train(args, parsed: dict, training, recipe) -> None:
    from flows.train import train as train_flow

    summary = train_flow(args.config, args.dataset_version, args.data_root, recipe.model_dump(mode="json"),
                         parsed).summary
    print(f"model {summary.model_version}: {summary.run_dir}/model\n{summary.describe()}")


def _pipeline(args, parsed: dict, training, recipe) -> None:
    from flows.pipeline import pipeline

    result = pipeline(args.config, args.data_root, training, args.reevaluate, parsed=parsed)
    print(f"dataset: {result.dataset_dir}\n"
          f"model {result.run.model_version}: {result.layout.model}\n"
          f"{result.evaluation.describe()}\n"
          f"listening report: {result.evaluation.report}\n"
          f"exports: {result.layout.export}\n"
          f"Prefect UI: {ui_hint()}")


def _evaluate(args, parsed: dict, training, recipe) -> None:
    from flows.evaluate import evaluate as evaluate_flow

    result = evaluate_flow(args.config, args.model_version, args.dataset_version, args.data_root, parsed)
    print(f"{result.describe()}{' REGRESSION: ' + '; '.join(result.regressions) if result.regression else ''}\n"
          f"report: {result.report}")


def _export(args, parsed: dict, training, recipe) -> None:
    from flows.export import export as export_flow

    result = export_flow(args.config, args.model_version, args.data_root, parsed, target=args.target)
    if args.target == "nas":
        print(f"exported {result.describe()}")
        return
    if args.target == "neutone":
        print(f"Neutone FX model: {result.folder / 'model.nm'} ({result.bytes:,} bytes; it tells the DAW its delay, "
              f"{result.delay_samples} samples at 16 kHz)\nin Neutone FX: Load your own, and pick the file")
        return
    print(f"DDSP-VST model: {result.model} ({result.bytes:,} bytes, a history of {result.history_floats} of "
          f"{STATE_SIZE} state floats)\nits trained reverb: {', '.join(str(p) for p in result.reverbs)}\n"
          f"copy the .tflite into ~/Documents/Magenta/DDSP/Models/ and pick it in the plugin's model menu")
