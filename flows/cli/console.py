"""What a `nas` command prints: our own lines (stages, progress, results, warnings that
matter, errors). Third-party noise is silenced at its source, before the libraries load:
environment variables that their native code and subprocesses read, logger levels, and
warning filters scoped to the known messages. `--verbose` or NAS_LOG_LEVEL=DEBUG keeps
everything."""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
import warnings
from typing import Callable
from urllib.parse import urlsplit

from nas.locations import NO_SPACE, out_of_space

# Native code reads these at load, and subprocesses (Beam workers) inherit them.
QUIET_ENV = {"GRPC_VERBOSITY": "ERROR",  # the channels of Beam's workers
             "DASK_LOGGING__DISTRIBUTED": "warning"}  # a Dask cluster's start, in its every process
# Lines that native code (TensorFlow 2.21 logs through absl before anyone initialises it,
# so no variable reaches it) and Beam's worker processes (their own logging, before ours
# could be set) write straight to file descriptor 2. Matched whole, line by line.
KNOWN_STDERR_LINES = re.compile("|".join([
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"[IW]\d{4} [\d:. ]+\d+ (port|cudart_stub|cpu_feature_guard|cuda_executor|gpu_device)\.cc:\d+\] .*",
    r"E\d{4} [\d:. ]+\d+ cuda_(platform|executor|diagnostics)\.cc:\d+\] .*(cuInit|CUDA|cuda).*",
    # XLA reading a compiled step from its cache (nas.machine): it tries the text format first
    r"E\d{4} [\d:. ]+\d+ text_format\.cc:\d+\] Error parsing text-format tensorflow\.XlaSerializedCacheEntry: .*",
    r"To enable the following instructions: .* in other operations, rebuild TensorFlow .*",
    r"(WARNING:root:|\S+ WARNING root: )?apitools not found, and bigquery client libraries are not available.*",
    r"INFO:__main__:Logging handler created\.",
    r"(WARNING:\S+:)?(No semi_persistent_directory found|Discarding unparseable args).*",
    r"INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.",  # the export's parity check
    # the TFLite converter reading back the SavedModel TensorFlow 2.21 just wrote (export --target ddsp-vst)
    r"E\d{4} [\d:. ]+\d+ node_def_util\.cc:\d+\] NodeDef mentions attribute Truncate which is not in the op .*",
    r"wandb: Adding directory to artifact \(.*\)\.\.\. Done\. [\d.]+s",  # printed, though runs are silent
    r"wandb: Generating checksum for up to \d+ objects in \".*\"\.\.\. Done\. [\d.]+s",  # a bucket's references
    # onnxruntime's quantizer, on the unused initializers tf2onnx leaves in a GRU's graph
    r"(\x1b\[[\d;]*m)?[\d\- :.]+ \[W:onnxruntime:, graph\.cc:\d+ CleanUnusedInitializersAndNodeArgs\] .*",
]))
# (message regex, category): Python warnings of libraries that say nothing to our users.
KNOWN_WARNINGS = (
    ("Couldn't find ffmpeg or avconv", RuntimeWarning),  # pydub, imported by ddsp; we decode with soundfile
    (r"\s*Warning: tf.lite.Interpreter is deprecated", UserWarning),  # the export's parity check
)
# The same for subprocesses (Beam workers import ddsp too), as PYTHONWARNINGS entries.
SUBPROCESS_WARNINGS = ("ignore:Couldn't find ffmpeg or avconv:RuntimeWarning",)
# Loggers whose INFO and WARNING lines are their own business.
QUIET_LOGGERS = {
    "absl": logging.ERROR, "tensorflow": logging.ERROR, "h5py": logging.WARNING, "matplotlib": logging.WARNING,
    "httpx": logging.WARNING, "tf2onnx": logging.ERROR, "numba": logging.WARNING,
    # apitools not found, Discarding unparseable args, No semi_persistent_directory found
    "apache_beam": logging.ERROR,
    # "Found credentials in environment variables", "Found endpoint for s3 via: environment_global"
    "botocore": logging.WARNING, "aiobotocore": logging.WARNING,
    # Prefect's queue services, draining at exit: "Still processing items: 1 items remaining..."
    "EventsWorker": logging.ERROR, "APILogWorker": logging.ERROR,
    "distributed": logging.WARNING,  # a Dask task runner's cluster: its workers, connections and dashboard
}
QUIET = "NAS_QUIET_LIBRARIES"  # set by a default console for the processes it starts (Dask workers)
# Messages logged on the root logger by libraries (onnxruntime's quantizer).
KNOWN_ROOT_MESSAGES = ("Please consider to run pre-processing before quantization",  # onnxruntime words it
                       "Please consider pre-processing before quantization")  # two ways, by quantizer


def verbose_requested(flag: bool) -> bool:
    return flag or os.environ.get("NAS_LOG_LEVEL", "").upper() == "DEBUG"


class _KnownMessages(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(KNOWN_ROOT_MESSAGES)


class _KnownLines(logging.Filter):
    """A record whose line is one of KNOWN_STDERR_LINES (Beam logs "apitools not found" on
    the root logger at import): the stderr filter would drop it, but a terminal's display
    writes past that filter, so the handler drops it itself."""

    def __init__(self, handler: logging.Handler):
        super().__init__()
        self.handler = handler

    def filter(self, record: logging.LogRecord) -> bool:
        return not KNOWN_STDERR_LINES.fullmatch(self.handler.format(record))


class _OrchestrationChatter(logging.Filter):
    """On the console only (the UI keeps them): Prefect's "Finished in state Completed()" of
    every task and flow run, as the stages' own lines say what was done (a failed or crashed
    state still prints; so do each flow run's start and UI link); its two lines around each
    state hook that ran well (flows.worker_runs', on every stage); its Dask task runner's cluster
    start and dashboard; and Dask's close, which kills a worker still finishing TensorFlow's
    threads after 4 s. (Not by logger level: Prefect's logging setup resets the levels of its
    loggers' children.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "distributed.nanny" and record.getMessage().startswith("Worker process still alive"):
            return False
        if record.levelno != logging.INFO:
            return True
        if record.name == "prefect.task_runner.dask":
            return False
        message = record.getMessage()
        return not (record.name in ("prefect.task_runs", "prefect.flow_runs", "prefect.engine")
                    and (message.startswith(("Finished in state Completed", "Running hook "))
                         or message.startswith("Hook ") and message.endswith("finished running successfully")))


class _OutOfSpace(logging.Filter):
    """A full disk is one line of the command's own at its end (flows/cli/stages.py); the
    tracebacks that every layer between the write and the command logs on the way (Beam's
    worker, its job service, Prefect's task and flow runs) stay off the console (the UI keeps
    them, and --verbose prints them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (NO_SPACE in record.getMessage() or (exc is not None and out_of_space(exc)))


class _ServerAway(logging.Filter):
    """A Prefect server that stops answering while a command runs: the command goes on (the
    clients retry its state changes), and the console says so once, in place of Prefect's
    warning for each reconnection and its error, with the whole event, for each event lost."""

    SAYS = ("the Prefect server stopped answering: the run goes on, retrying what it reports; "
            "logs and events sent while it was away may be missing from the UI")

    def __init__(self):
        super().__init__()
        self.said = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name == "prefect.events.clients" and message.startswith("Unable to connect to"):
            if self.said:
                return False
            self.said, record.msg, record.args = True, self.SAYS, ()
            return True
        return not (record.name == "prefect._internal.concurrency" and "failed to process item" in message)


class _Tracebacks:
    """Reads the lines of a stream: a traceback block (with its chained ones) is held until it
    ends, then passed on whole, or dropped if it is a full disk's (see _OutOfSpace)."""

    CONTINUES = ("Traceback (most recent call last):", "During handling of the above exception",
                 "The above exception was the direct cause")

    def __init__(self):
        self.block: list[str] = []
        self.exception_next = False

    def feed(self, text: str) -> list[str]:
        """The lines to print now."""
        bare = text.rstrip("\r\n")
        if not self.block and bare.endswith("Original traceback is"):  # Beam's worker: the block's header
            self.block.append(text)
            return []
        if not self.block and not bare.startswith(self.CONTINUES[0]):
            return [] if NO_SPACE in bare else [text]
        if not self.block or bare[:1].isspace() or not bare or bare.startswith(self.CONTINUES) or self.exception_next:
            self.exception_next = bare[:1].isspace()  # after a frame's lines comes the exception's line
            self.block.append(text)
            return []
        return self.flush() + self.feed(text)

    def flush(self) -> list[str]:
        block, self.block, self.exception_next = self.block, [], False
        return [] if any(NO_SPACE in line for line in block) else block


_ORCHESTRATION_CHATTER = _OrchestrationChatter()
_KNOWN_MESSAGES = _KnownMessages()
_SERVER_AWAY = _ServerAway()


class TerminalDisplay(logging.Handler):  # no leading underscore: Prefect's setup keeps a root handler so named
    """On a terminal, a record that carries `progress` (nas.progress.progress) moves its
    task's bar in one live display (rich) instead of printing a line; every other line
    prints above the bars. The display closes when all its bars are full."""

    def __init__(self, stream):
        super().__init__()
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn
        from rich.table import Column

        self.console = Console(file=stream, highlight=False)
        self.bars = Progress(TextColumn("{task.description}", table_column=Column(min_width=9, no_wrap=True)),
                             BarColumn(bar_width=24),
                             TextColumn("{task.fields[detail]}",
                                        table_column=Column(no_wrap=True, overflow="ellipsis")),
                             console=self.console)
        self.tasks: dict[str, int] = {}
        atexit.register(self.close_display)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            spec = getattr(record, "progress", None)
            if spec is None:
                self.console.print(self.format(record), markup=False, soft_wrap=True)
                return
            name, done, total, detail = spec
            if name not in self.tasks:
                self.bars.start()
                self.tasks[name] = self.bars.add_task(name, total=total, detail="")
            self.bars.update(self.tasks[name], completed=done, total=total, detail=detail, refresh=True)
            if all(task.finished for task in self.bars.tasks):
                self.close_display()
        except Exception:
            self.handleError(record)

    def close_display(self) -> None:
        self.bars.stop()
        for task in self.tasks.values():
            self.bars.remove_task(task)
        self.tasks.clear()


# Where the object store is and what proves who we are to it: the clients' errors quote the
# endpoint, and no log line of a run (console or Prefect UI) may, nor a secret. The access key
# id is a name, not a secret (AWS prints it in its own errors), so it is left alone.
SECRET_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# user:password@ in any URL of a text
URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^\s/:@]+):(?P<password>[^\s/@]+)@")


def redactor() -> Callable[[str], str]:
    """What replaces, in a text, the environment's endpoint and secrets by the variable's
    name (whole values only: a value inside a longer word, such as a bucket's name, is not
    one), and the password of any URL that carries credentials."""
    secrets = {}
    for name in SECRET_VARIABLES:
        value = os.environ.get(name)
        if value:
            secrets[value] = f"<{name}>"
            if name == "AWS_ENDPOINT_URL" and urlsplit(value).netloc:
                secrets[urlsplit(value).netloc] = f"<{name}>"
    alternatives = "|".join(re.escape(s) for s in sorted(secrets, key=len, reverse=True))
    whole = re.compile(rf"(?<![\w.-])(?:{alternatives})(?![\w-])") if secrets else None

    def redact(text: str) -> str:
        text = URL_CREDENTIALS.sub(r"\g<scheme>\g<user>:<password>@", text)
        return whole.sub(lambda m: secrets[m.group(0)], text) if whole else text
    return redact


def redact_secrets(redact: Callable[[str], str]) -> None:
    """Every log record made in this process has the endpoint and credentials redacted, in
    its message and its traceback (lines that subprocesses write go through `_filter_stderr`)."""
    make_record = logging.getLogRecordFactory()

    def redacted(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it where the record is emitted
            return record
        if redact(message) != message:
            record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(redacted)


def configure(verbose: bool) -> None:
    """Call first, before TensorFlow, Beam or ddsp are imported."""
    redact = redactor()
    redact_secrets(redact)
    level = logging.DEBUG if verbose else logging.INFO
    # On a terminal (and not --verbose, whose native lines would tear a live display) progress is drawn as bars.
    handler = (TerminalDisplay(os.fdopen(os.dup(2), "w", buffering=1)) if sys.stderr.isatty() and not verbose
               else logging.StreamHandler())
    handler.setFormatter(_line_format())
    handler.addFilter(_ORCHESTRATION_CHATTER)
    logging.basicConfig(level=level, handlers=[handler])
    # The temporary Prefect server's telemetry writes race its own SQLite start-up.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")  # else a new Prefect home's first client prints a telemetry notice
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "nas")  # progress lines reach the Prefect UI
    if verbose:
        if any(os.environ.get(name) for name in SECRET_VARIABLES):  # the libraries' own lines may quote them
            _filter_stderr(None, redact)
        return
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), *SUBPROCESS_WARNINGS]))
    os.environ[QUIET] = "1"
    _quiet_libraries()
    handler.addFilter(_KnownLines(handler))
    handler.addFilter(_OutOfSpace())
    _filter_stderr(KNOWN_STDERR_LINES, redact)


def _line_format() -> logging.Formatter:
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def in_worker() -> None:
    """The command's console in a Dask worker, whose logging Prefect set up: our lines in the
    command's format, and the libraries' silenced unless the command is verbose. A task calls
    this first. (The worker's lines to stderr pass the command's filter: it inherits it.)"""
    logging.getLogger("nas").setLevel(logging.INFO)
    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):  # where Prefect puts its console
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setFormatter(_line_format())
    if os.environ.get(QUIET) == "1":
        _quiet_libraries()
        for handler in logging.getLogger().handlers:  # Prefect's console handler, there
            handler.addFilter(_ORCHESTRATION_CHATTER)


def _quiet_libraries() -> None:
    for message, category in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name, value in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(value)
    logging.getLogger().addFilter(_KNOWN_MESSAGES)  # one instance: a filter is added once, however often
    for name in ("prefect.events.clients", "prefect._internal.concurrency"):  # Prefect's own handler prints these
        logging.getLogger(name).addFilter(_SERVER_AWAY)


def _filter_stderr(known: re.Pattern | None, redact: Callable[[str], str] | None) -> None:
    """File descriptor 2 becomes a pipe that a thread copies to the real stderr, less the
    known lines and with secrets redacted; subprocesses inherit the pipe, so their lines
    (Beam's workers' tracebacks among them) pass the same filter."""
    sys.stderr.flush()
    real = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)

    tracebacks = _Tracebacks() if known else None

    def write_out(texts: list[str]) -> None:
        for text in texts:
            os.write(real, (redact(text) if redact else text).encode())

    def copy() -> None:
        with os.fdopen(read, "rb") as lines:
            for line in lines:
                text = line.decode(errors="replace")
                if known and known.fullmatch(text.rstrip("\r\n")):
                    continue
                write_out(tracebacks.feed(text) if tracebacks else [text])
        write_out(tracebacks.flush() if tracebacks else [])

    thread = threading.Thread(target=copy, name="stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:  # hand back the real stderr and let the thread drain the pipe
        _releases.remove(restore)
        sys.stderr.flush()
        os.dup2(real, 2)
        thread.join(timeout=5)
        if not thread.is_alive():  # drained: its copy of the stderr before goes, so that stderr's pipe can end
            os.close(real)
        elif tracebacks:  # a process we started still holds the pipe: the held block now
            write_out(tracebacks.flush())

    _releases.append(restore)


_releases: list[Callable[[], None]] = []  # each filter's restore, until it has run


def release_stderr() -> None:
    """Everything written to stderr so far reaches it, and later writes go straight there:
    at exit, and before an `os._exit`, which runs no exit handler. The newest filter first:
    each filter's stderr is the one before it (as atexit ran them, last in, first out)."""
    while _releases:
        _releases[-1]()


atexit.register(release_stderr)
