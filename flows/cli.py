"""The `nas` command line."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import yaml
from pydantic import ValidationError

from flows import console
from nas.config import ConfigError, find_audio, load_config
from nas.config.presets import PRESETS, RECIPES, resolve_training
from nas.export.runtimes import RUNTIMES
from nas.locations import check_reachable, is_url, resolve_root, unreachable

DEFAULT_DATA_ROOT = os.environ.get("NAS_DATA_ROOT", "nas-data")
SERVER_STARTUP_S = 600  # a fresh install's first server start on a busy 2-core machine, with room


def _parse_overrides(items: list[str], parse: bool = True) -> dict:
    """KEY=VALUE items, their values read as YAML (`parse`) or kept as text."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key.strip()] = yaml.safe_load(value) if parse else value
    return overrides


def _listed(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _training_arguments(command) -> None:
    command.add_argument("config", help="dataset config (YAML), e.g. dataset_configs/demo-violin.yaml")
    command.add_argument("--preset", choices=list(PRESETS), help="model preset (default: the config's training.preset)")
    command.add_argument("--steps", type=int, help="train until this step (default: the config's training.steps)")
    command.add_argument("--recipe", choices=list(RECIPES), help="training recipe (default: the config's "
                         "training.recipe): thesis (Adam 3e-4, ddsp's decay) or fast (3e-3, warm-up, cosine)")
    command.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a setting of the preset, e.g. --set optim.learning_rate=1e-3 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    """Every command and flag (the docs' CLI reference is generated from it)."""
    parser = argparse.ArgumentParser(prog="nas", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also print what TensorFlow, Beam and the other libraries log (or NAS_LOG_LEVEL=DEBUG)")
    commands = parser.add_subparsers(dest="command", required=True)
    prepare = commands.add_parser("prepare", help="prepare a dataset: features, TFRecords, statistics, W&B")
    prepare.add_argument("config", help="dataset config (YAML), e.g. dataset_configs/demo-violin.yaml")
    prepare.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="where datasets are written")
    train = commands.add_parser("train", help="train a model on the dataset a config prepares")
    _training_arguments(train)
    train.add_argument("--dataset-version", help="a published dataset version (default: prepare the config now)")
    train.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="where datasets and runs are written")
    run = commands.add_parser("run", help="the whole DAG for a dataset: prepare, train, evaluate, export")
    _training_arguments(run)
    run.add_argument("--reevaluate", action="store_true", help="score the model again even if it was scored")
    run.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="where datasets and runs are written")
    many = commands.add_parser("run-many", help="several datasets at once, each as its own task; on a Dask "
                               "cluster with --dask-workers or --dask-address")
    many.add_argument("configs", nargs="+", help="dataset configs (YAML)")
    many.add_argument("--until", choices=["prepare", "export"], default="export",
                      help="prepare only, or the whole pipeline (default)")
    many.add_argument("--dask-workers", type=int, default=0, help="a local Dask cluster of this many processes")
    many.add_argument("--dask-address", help="an existing Dask scheduler, e.g. tcp://scheduler:8786")
    many.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="where datasets and runs are written")
    sweep = commands.add_parser("sweep", help="compare models and recipes on one dataset: train, evaluate, export and "
                                "benchmark every point; summary table, quality-speed frontier, learning curves")
    sweep.add_argument("config", help="dataset config (YAML), e.g. dataset_configs/demo-violin.yaml")
    sweep.add_argument("--preset", type=_listed, help=f"presets, comma-separated ({', '.join(PRESETS)}; default: the "
                       "config's)")
    sweep.add_argument("--recipe", type=_listed, help=f"recipes, comma-separated ({', '.join(RECIPES)}; default: the "
                       "config's)")
    sweep.add_argument("--steps", type=int, help="training steps of every point (default: the config's)")
    sweep.add_argument("--seeds", type=int, default=1, help="seeds 0 .. N-1 of every setting (default 1)")
    sweep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=V1,V2",
                       help="a setting to sweep, e.g. --set model.channels=8,16,32 (repeatable: every combination)")
    sweep.add_argument("--name", help="the sweep's name (default: the dataset's); its card is sweep-NAME")
    sweep.add_argument("--runtimes", type=_listed, help="runtimes to benchmark (default: all of "
                       f"{', '.join(RUNTIMES)})")
    sweep.add_argument("--runtime-seconds", type=float, default=10.0, help="measuring time per point (default 10)")
    sweep.add_argument("--dask-workers", type=int, default=2, help="a local Dask cluster of this many processes, "
                       "each training one point at a time (default 2)")
    sweep.add_argument("--dask-address", help="an existing Dask scheduler instead, e.g. tcp://scheduler:8786")
    sweep.add_argument("--train-deployment", help="send each point's training to this deployment, e.g. "
                       "train/train-gpu")
    sweep.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="where datasets, runs and sweeps are written")
    status = commands.add_parser("status", help="datasets with their latest dataset, model and evaluation")
    status.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="where datasets and runs are")
    evaluate = commands.add_parser("evaluate", help="score a trained model on a dataset; report, history, W&B")
    evaluate.add_argument("config", help="dataset config (YAML)")
    evaluate.add_argument("--model-version", help="e.g. cnn-tiny-0123456789ab-500 (default: the latest model)")
    evaluate.add_argument("--dataset-version", help="a published dataset version (default: the latest)")
    evaluate.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="where datasets and runs are")
    export = commands.add_parser("export", help="export a trained model: ONNX, TFLite, int8 ONNX, CPU engine")
    export.add_argument("config", help="dataset config (YAML)")
    export.add_argument("--model-version", help="default: the latest model of the config's dataset")
    export.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="where datasets and runs are")
    register = commands.add_parser(
        "register", help="a new dataset: write dataset_configs/NAME.yaml, add its pipeline deployment, "
        "and emit the Prefect event that starts its pipeline")
    register.add_argument("audio_dir", help="folder of the instrument's recordings (searched recursively)")
    register.add_argument("--name", required=True, help="dataset name, e.g. cello (lower case, digits, . _ -)")
    register.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                          help="a config setting, e.g. --set crepe.capacity=tiny --set training.steps=2000")
    register.add_argument("--configs-dir", default="dataset_configs", help="where dataset configs live")
    register.add_argument("--prefect-yaml", default="prefect.yaml",
                          help="deployments file to add pipeline-NAME to ('' to leave it alone)")
    register.add_argument("--data-root", default=DEFAULT_DATA_ROOT, help="where the pipeline writes")
    register.add_argument("--force", action="store_true", help="replace an existing config of that name")
    server = commands.add_parser("server", help="the local Prefect server that nas commands start and share when "
                                 "no server is configured (PREFECT_API_URL)")
    server.add_argument("action", choices=["status", "stop"])
    transfer = commands.add_parser("transfer", help="play a monophonic recording with a trained model")
    transfer.add_argument("model", help="a run folder (<data root>/<dataset>/runs/<run>) or its model/ or export/")
    transfer.add_argument("input", help="audio file (wav, flac, ogg, mp3, ...)")
    transfer.add_argument("-o", "--output", required=True, help="WAV file to write")
    transfer.add_argument("--block", type=int, help="play it as it would play live, through the streaming engine, "
                                                    "this many samples a call (32-4096); default: offline")
    transfer.add_argument("--lookahead", type=int, help="with --block: samples each frame's pitch and loudness "
                                                        "windows reach past it (0-512; default 512, as offline)")
    play = commands.add_parser("play", help="play a trained model live: an instrument (or a recording) in, the model "
                               "out, through an audio interface")
    play.add_argument("model", nargs="?", help="a run folder (<data root>/<dataset>/runs/<run>) or its model/ or export/")
    play.add_argument("--input-device", help="the instrument's audio device (PortAudio name or index; default: the "
                                             "system's)")
    play.add_argument("--input-file", help="a recording played in as the instrument, instead of an input device")
    play.add_argument("--output-device", help="where the model plays (PortAudio name or index; default: the system's)")
    play.add_argument("--block", type=int, default=128, help="samples per audio callback (32-4096; default 128: "
                                                             "with the block ahead, 52 ms behind the input at 16 kHz)")
    play.add_argument("--lookahead", type=int, help="samples each frame's pitch and loudness windows reach past it "
                                                    "(0-512; default 512, as offline; less is sooner, less exact)")
    play.add_argument("--ahead", type=int, help="blocks the chain works ahead of the audio callback (default 1; "
                                                "each absorbs a block's worth of delay and adds a block of latency)")
    play.add_argument("--seconds", type=float, help="stop after this long (default: the input file's length, or "
                                                    "Ctrl-C)")
    play.add_argument("--record", help="also write what was played to this WAV file")
    play.add_argument("--list-devices", action="store_true", help="list the audio devices and stop")
    render = commands.add_parser("render", help="play a trained model from MIDI notes or f0 and loudness frames")
    render.add_argument("model", help="a run folder (<data root>/<dataset>/runs/<run>) or its model/ or export/")
    played = render.add_mutually_exclusive_group(required=True)
    played.add_argument("--midi", help="a standard MIDI file, played monophonically (the latest held note sounds)")
    played.add_argument("--features", help="f0 and loudness frames: .npz (f0_hz, loudness_db[, frame_rate]) or a "
                                           "dataset's features.parquet")
    render.add_argument("--source", help="with a features.parquet: the file whose rows to play (default: the first)")
    render.add_argument("-o", "--output", required=True, help="WAV file to write")
    render.add_argument("--block", type=int, help="stream it through the streaming engine, this many samples a call "
                                                  "(32-4096); default: render offline")
    render.add_argument("--vibrato", type=float, default=0.0, metavar="CENTS", help="MIDI: vibrato depth (default 0)")
    render.add_argument("--vibrato-hz", type=float, default=5.5, help="MIDI: vibrato rate")
    render.add_argument("--attack", type=float, default=0.05, help="MIDI: seconds from silence to a note's level")
    render.add_argument("--release", type=float, default=0.25, help="MIDI: seconds from a note's level to silence")
    render.add_argument("--bend-range", type=float, default=2.0, help="MIDI: semitones of a full pitch bend")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    console.configure(console.verbose_requested(args.verbose))
    if args.command == "transfer":
        return _transfer(args)
    if args.command == "render":
        return _render(args)
    if args.command == "play":
        return _play(args)
    if args.command == "status":
        return _status(args.data_root)
    if args.command == "register":
        return _register(args)
    if args.command == "server":
        return _server(args.action)
    if args.command == "run-many":
        return _run_many(args)
    if args.command == "sweep":
        return _sweep(args)
    try:  # config errors are reported before any flow starts; the flows get the parsed config
        check_reachable(resolve_root(args.data_root))
        config, base = load_config(args.config)
        if args.command == "prepare" or args.command in ("train", "run") and not getattr(args, "dataset_version", None):
            _check_audio(args.config, config, base)
        training = _training_settings(args) if args.command in ("train", "run") else None
        recipe = None if training is None else resolve_training(config.training, training)
    except (ConfigError, ValueError, ValidationError) as error:
        print(f"nas: {error}", file=sys.stderr)
        return 2
    try:  # nothing to evaluate or export: say so before a flow starts
        if args.command in ("evaluate", "export"):
            from flows.evaluate import resolve_model

            resolve_model(config.name, args.model_version, getattr(args, "dataset_version", None),
                          resolve_root(args.data_root))
    except FileNotFoundError as error:
        print(f"nas: {error}", file=sys.stderr)
        return 2
    with _prefect_server() as ready:
        if not ready:
            return 1
        try:
            _run_flow(args, config.model_dump(mode="json"), training, recipe)
        except Exception as error:
            buckets = [u for u in [args.data_root, *config.audio] if is_url(u)]
            if not (buckets and unreachable(error)):
                raise
            print(f"nas: {', '.join(buckets)}: the object store stopped answering ({_cause(error)}), still after "
                  f"retries with back-off; what is published is kept: run the command again to go on",
                  file=sys.stderr)
            return 1
    return 0


def _cause(error: BaseException) -> str:
    """The innermost exception's type: its text can name the endpoint, which no line of ours shows."""
    while error.__cause__ or error.__context__:
        error = error.__cause__ or error.__context__
    return type(error).__name__


def _training_settings(args) -> dict:
    """The command line's settings over the config's training section."""
    settings = {"preset": args.preset, "steps": args.steps, "recipe": args.recipe}
    return {**{k: v for k, v in settings.items() if v}, **_parse_overrides(args.overrides)}


def _command_line_settings() -> dict:
    """Prefect settings for flow runs started here, with someone watching the console: no
    flow-run heartbeats unless the user set their frequency. Heartbeats only feed a
    zombie-run automation, which is for unattended runs (deployments keep Prefect's
    default), and each flow run waits up to 1 s for its heartbeat thread to wake and stop:
    2-4 s of a cached `nas run`'s five flow runs (benchmarks/cached_rerun.py)."""
    from prefect.settings import get_current_settings

    if "heartbeat_frequency" in get_current_settings().flows.model_fields_set:
        return {}
    return {"flows.heartbeat_frequency": None}


@contextmanager
def _prefect_server():
    """The Prefect server this command's flow runs report to (`_api`), with the command
    line's settings."""
    from prefect.settings import temporary_settings

    with temporary_settings(_command_line_settings()), _api() as ready:
        yield ready


@contextmanager
def _api():
    """Flow runs go to the configured Prefect server, else to the local one that nas
    commands share (started on first use), so runs are kept and a later command does not
    wait for a new server. Yields False, having said why, if that server cannot start."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield True
        return
    from flows.local_server import ServerStartError, prefect_home, shared_server

    try:
        api = shared_server(prefect_home(), float(os.environ.get("NAS_SERVER_STARTUP_SECONDS", SERVER_STARTUP_S)),
                            announce=lambda line: print(f"nas: {line}", file=sys.stderr, flush=True))
    except ServerStartError as error:
        print(f"nas: {error}", file=sys.stderr)
        yield False
        return
    os.environ["PREFECT_API_URL"] = api  # subprocesses (Beam, Dask workers) report there too
    with temporary_settings({PREFECT_API_URL: api}):
        yield True


def _server(action: str) -> int:
    from flows.local_server import answers, prefect_home, shared_state, stop_shared_server

    if action == "stop":
        api = stop_shared_server(prefect_home())
        print(f"stopped the local Prefect server at {api}" if api else "no local Prefect server runs")
        return 0
    state = shared_state(prefect_home())
    if state and answers(f"{state['api']}/health"):
        print(f"local Prefect server: {state['api'].removesuffix('/api')} (log: {state['log']})")
    else:
        print("no local Prefect server runs; the next nas command that runs a flow starts one")
    return 0


def _check_audio(path: str, config, base: Path) -> None:
    try:
        find_audio(config, base)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _run_flow(args, parsed: dict, training: dict | None, recipe) -> None:
    if args.command == "prepare":
        from flows.prepare import prepare as prepare_flow

        print(prepare_flow(args.config, args.data_root, parsed))
    elif args.command == "train":
        from flows.train import train as train_flow

        summary = train_flow(args.config, args.dataset_version, args.data_root, recipe.model_dump(mode="json"),
                             parsed).summary
        print(f"model {summary.model_version}: {summary.run_dir}/model\n{summary.describe()}")
    elif args.command == "run":
        from flows.pipeline import pipeline

        result = pipeline(args.config, args.data_root, training, args.reevaluate, parsed=parsed)
        print(f"dataset: {result.dataset_dir}\n"
              f"model {result.run.model_version}: {result.layout.model}\n"
              f"{result.evaluation.describe()}\n"
              f"listening report: {result.evaluation.report}\n"
              f"exports: {result.layout.export}\n"
              f"Prefect UI: {_ui_hint()}")
    elif args.command == "evaluate":
        from flows.evaluate import evaluate as evaluate_flow

        result = evaluate_flow(args.config, args.model_version, args.dataset_version, args.data_root, parsed)
        print(f"{result.describe()}{' REGRESSION: ' + '; '.join(result.regressions) if result.regression else ''}\n"
              f"report: {result.report}")
    elif args.command == "export":
        from flows.export import export as export_flow

        report = export_flow(args.config, args.model_version, args.data_root, parsed)
        print(f"exported {report.describe()}")


def _run_many(args) -> int:
    try:
        for path in args.configs:
            config, base = load_config(path)
            _check_audio(path, config, base)
    except ConfigError as error:
        print(f"nas: {error}", file=sys.stderr)
        return 2
    from flows.many import dask_runner, datasets

    flow = datasets
    if args.dask_address or args.dask_workers:
        flow = datasets.with_options(task_runner=dask_runner(args.dask_address, args.dask_workers))
    with _prefect_server() as ready:
        if not ready:
            return 1
        results = flow(args.configs, args.data_root, args.until)
    for path, result in results.items():
        print(f"{path}: {result.get('dataset_dir') or 'FAILED: ' + result['error']}")
    return 1 if any("error" in r for r in results.values()) else 0


def _sweep(args) -> int:
    try:
        check_reachable(resolve_root(args.data_root))
        config, base = load_config(args.config)
        _check_audio(args.config, config, base)
        grid = {key: [yaml.safe_load(v) for v in _listed(values)]
                for key, values in _parse_overrides(args.overrides, parse=False).items()}
        for name, known, given in (("preset", PRESETS, args.preset), ("recipe", RECIPES, args.recipe),
                                   ("runtime", RUNTIMES, args.runtimes)):
            if unknown := [g for g in given or [] if g not in known]:
                raise ValueError(f"--{name}: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
        if args.seeds < 1:
            raise ValueError(f"--seeds {args.seeds}: at least 1")
    except (ConfigError, ValueError) as error:
        print(f"nas: {error}", file=sys.stderr)
        return 2
    from flows.sweep import sweep_options

    with _prefect_server() as ready:
        if not ready:
            return 1
        result = sweep_options(args.dask_address, args.dask_workers)(
            args.config, args.data_root, args.preset, args.recipe, args.steps, args.seeds, grid, args.name,
            args.train_deployment, args.runtimes, args.runtime_seconds, config.model_dump(mode="json"))
    failed = [r for r in result.rows if r["status"] != "done"]
    print(f"sweep {result.name}: {len(result.rows) - len(failed)} of {len(result.rows)} points done; "
          f"{result.dir}/report.md" + "".join(f"\n  {r['label']}: {r['status']}" for r in failed))
    return 1 if failed else 0


def _ui_hint() -> str:
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

    from flows.local_server import prefect_home, shared_state

    shared = shared_state(prefect_home())
    local = shared and shared["api"] == PREFECT_API_URL.value()
    return (f"{PREFECT_UI_URL.value() or PREFECT_API_URL.value().removesuffix('/api')} "
            f"(flow runs; artifacts pipeline-, dataset-, model-, evaluation-<dataset>)"
            f"{'; the local server nas started, `nas server stop` ends it' if local else ''}")


def _status(data_root: str) -> int:
    from nas.status import dataset_status

    rows = dataset_status(resolve_root(data_root))
    if not rows:
        print(f"no prepared datasets under {data_root}")
        return 0
    header = ("dataset", "dataset_version", "model_version", "recipe", "eval_id", "spectral_loss", "f0_mae_cents",
              "loudness_mae_db", "regression")
    cells = [[_format(row[k]) for k in header] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    for line in [list(header), *cells]:
        print("  ".join(value.ljust(width) for value, width in zip(line, widths)).rstrip())
    return 0


def _format(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _as_seen_from_here(path: Path) -> str:
    """Relative to the working directory (the repo, where workers run too) when inside it."""
    path = path.absolute()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _register(args) -> int:
    from flows.deployments import add_pipeline_deployment
    from nas.registration import register_dataset

    try:
        path = register_dataset(args.audio_dir, args.name, Path(args.configs_dir),
                                _parse_overrides(args.settings), args.force)
    except (ConfigError, ValueError) as error:
        print(f"nas: {error}", file=sys.stderr)
        return 2
    data_root = args.data_root if is_url(args.data_root) else _as_seen_from_here(Path(args.data_root))
    config_path = _as_seen_from_here(path)
    print(f"wrote {path}")
    if args.prefect_yaml and not Path(args.prefect_yaml).is_file():
        print(f"{args.prefect_yaml} not found: no pipeline-{args.name} deployment added")
    elif args.prefect_yaml:
        try:
            if add_pipeline_deployment(Path(args.prefect_yaml), args.name, config_path, data_root):
                print(f"added deployment pipeline-{args.name} to {args.prefect_yaml} (apply: prefect deploy --all)")
        except ConfigError as error:
            print(f"nas: {error}", file=sys.stderr)
            return 2
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        print(f"no Prefect server set (PREFECT_API_URL): no event sent; run it now with `nas run {config_path}`")
        return 0
    from flows.events import DATASET_REGISTERED, announce_dataset

    event_id = announce_dataset(args.name, config_path, data_root)
    print(f"emitted {DATASET_REGISTERED} for nas.dataset.{args.name} (event {event_id}); "
          f"the pipeline-on-register deployment runs it")
    return 0


def _block_error(block: int | None) -> str | None:
    if block is not None and not 32 <= block <= 4096:
        return f"--block {block}: blocks are 32 to 4096 samples"
    return None


def _transfer(args) -> int:
    from nas.data.audio import write_wav
    from nas.engine.stream import NotStreamable
    from nas.live import live_transfer
    from nas.transfer import TransferError, transfer

    if error := _block_error(args.block):
        print(f"nas: {error}", file=sys.stderr)
        return 2
    try:
        if args.block:
            audio, rate, info = live_transfer(args.model, args.input, args.block, args.lookahead)
        else:
            audio, rate, info = transfer(args.model, args.input)
    except (TransferError, NotStreamable, FileNotFoundError, ValueError) as error:
        print(f"nas: {error}", file=sys.stderr)
        return 2
    write_wav(Path(args.output), audio, rate)
    live = (f"; live in blocks of {args.block}: heard {1000 * info['latency_samples'] / rate:.1f} ms behind the "
            f"input, {info['late_samples']} samples late" if args.block else "")
    print(f"{args.output}: {info['seconds']:.2f} s, shifted {info['octaves']:+d} octave(s) and "
          f"{info['loudness_offset_db']:+.1f} dB toward the dataset{live}")
    return 0


def _device(name: str | None):
    return int(name) if name is not None and name.isdigit() else name


def _play(args) -> int:
    try:
        import sounddevice as sd
    except OSError as error:  # the PortAudio library itself is missing
        print(f"nas: no audio: {error} (install PortAudio, e.g. Debian's libportaudio2)", file=sys.stderr)
        return 2
    if args.list_devices:
        print(sd.query_devices())
        return 0
    from nas.engine.stream import NotStreamable
    from nas.live import AHEAD, CENTRED, PlayError, play
    from nas.transfer import TransferError, load_engine, read_source, run_paths, run_statistics

    if error := _block_error(args.block) or (None if args.model else "a model (run folder) is needed"):
        print(f"nas: {error}", file=sys.stderr)
        return 2
    try:
        run, config = run_paths(args.model)
        engine = load_engine(run)
        statistics = run_statistics(config)
        source = read_source(Path(args.input_file), engine.sample_rate) if args.input_file else None
        print(f"playing {run.name} in blocks of {args.block} ({1000 * args.block / engine.sample_rate:.1f} ms)"
              + (f" from {args.input_file}" if args.input_file else "") + "; Ctrl-C stops", flush=True)
        result = play(engine, statistics, args.block, args.seconds, CENTRED if args.lookahead is None else args.lookahead,
                      _device(args.input_device), _device(args.output_device), source, args.record,
                      ahead=AHEAD if args.ahead is None else args.ahead)
    except (TransferError, NotStreamable, PlayError, FileNotFoundError, ValueError) as error:
        print(f"nas: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(f"played {result['seconds']:.1f} s in {result['callbacks']} blocks: {result['xruns']} xruns, "
          f"{result['late_samples']} samples late; latency {result['latency_ms']:.1f} ms; a block took "
          f"{result['block_p99_ms']:.2f} ms at the 99th percentile ({result['block_max_ms']:.2f} ms at most) "
          f"of its {result['block_ms']:.1f} ms")
    return 0


def _render(args) -> int:
    from nas.controls import ControlsError, Playing
    from nas.data.audio import write_wav
    from nas.engine.stream import NotStreamable
    from nas.render import render
    from nas.transfer import TransferError

    if error := _block_error(args.block):
        print(f"nas: {error}", file=sys.stderr)
        return 2
    playing = Playing(attack_s=args.attack, release_s=args.release, vibrato_cents=args.vibrato,
                      vibrato_hz=args.vibrato_hz, bend_semitones=args.bend_range)
    try:
        audio, rate, info = render(args.model, args.midi, args.features, args.block, playing, args.source)
    except (ControlsError, TransferError, NotStreamable, FileNotFoundError) as error:
        print(f"nas: {error}", file=sys.stderr)
        return 2
    write_wav(Path(args.output), audio, rate)
    how = f"streamed in blocks of {args.block}" if args.block else "offline"
    print(f"{args.output}: {info['seconds']:.2f} s ({info['frames']} control frames), {how}")
    return 0


EXIT_STACKS_AFTER_S = 120


def command() -> int:
    """The `nas` command: `main`, then the process exits. Should the exit hang (a library's
    thread or exit handler waiting on something), every thread's stack goes to stderr after
    EXIT_STACKS_AFTER_S, so that the hang names its place instead of looking like slow work."""
    code = main()
    import faulthandler

    faulthandler.dump_traceback_later(EXIT_STACKS_AFTER_S, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(command())
