"""A default `nas run` prints our lines only; `--verbose` brings the libraries' back; a
command's process ends when its work does."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time

import pytest

from tests.conftest import MULTI_PROCESSING, REPO, write_config

# What a run printed before (issue 13): TensorFlow's native CUDA and absl lines, Beam's
# worker chatter, pydub, an autograph divide-by-zero of ours, TFLite's deprecation banner,
# ONNX Runtime's quantisation advice, tf2onnx's optimiser lines.
NOISE = ("cuInit", "cudart_stub", "absl::InitializeLog", "apitools not found", "semi_persistent_directory",
         "Discarding unparseable args", "Couldn't find ffmpeg", "divide by zero encountered in log10",
         "tf.lite.Interpreter is deprecated", "pre-processing before quantization", "tf2onnx", "oneDNN",
         # "without a flow run id": progress lines from a thread must still reach the flow run's logs
         "without a flow run id", "XNNPACK", "Adding directory to artifact", "Still processing items",
         "XlaSerializedCacheEntry")


def test_verbose_lets_the_libraries_lines_through(small_sources, tmp_path):
    """A default run prints none of NOISE (test_smoke.py, on the whole DAG); with --verbose, a
    fresh preparation, which loads TensorFlow for its statistics (ddsp's), lets their lines pass."""
    config = write_config(small_sources / "console.yaml", audio=["audio/c-vorbis.ogg"], eval_fraction=0.0,
                          beam=MULTI_PROCESSING)
    verbose = subprocess.run([sys.executable, "-m", "flows.cli", "--verbose", "prepare", str(config), "--data-root",
                              str(tmp_path / "data")], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert "absl::InitializeLog" in verbose.stderr or "oneDNN" in verbose.stderr


TERMINAL_RUN = """
import logging
from flows.cli import console
console.configure(False)
from prefect.logging.configuration import setup_logging
setup_logging()  # what a flow run's start does: our terminal display must survive it
from nas.progress import progress
log = logging.getLogger("nas.test")
import apache_beam.io.gcp.internal.clients.bigquery  # logs "apitools not found" on the root logger, as a run does
log.info("a plain line")
for step in (10, 20, 30):
    log.info("step %d/30 as a log line", step, extra=progress("training", step, 30, f"{step}/30 as a bar"))
log.getChild("again").info("a line after the bar")
"""


def test_a_terminal_draws_progress_as_a_bar_and_the_rest_as_lines():
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-c", TERMINAL_RUN], cwd=REPO, stdin=follower, stdout=follower,
                               stderr=follower, env={**os.environ, "COLUMNS": "100"})
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=120) == 0
    text = output.decode(errors="replace")
    assert "nas.test: a plain line" in text and "nas.test.again: a line after the bar" in text
    assert "\u2501" in text and "30/30 as a bar" in text  # rich's bar glyph, and the bar's own detail
    assert "as a log line" not in text  # a progress record is not printed as a line as well
    assert "apitools" not in text  # the display writes past the stderr filter: known lines are dropped before it


STRAGGLER = """
import sys, threading, time
from concurrent.futures import ThreadPoolExecutor
import flows.cli.main as cli
cli.THREADS_GRACE_S = 0.5
held = threading.Event()
def work():
    threading.Thread(target=held.wait, name="queue-drainer").start()
    global pool  # kept and never shut down, as a library keeps its own
    pool = ThreadPoolExecutor(thread_name_prefix="idle-pool")
    pool.submit(time.sleep, 0.1).result()
    return 0
cli.main = work
sys.exit(cli.command())
"""


def test_a_thread_left_when_the_work_is_done_does_not_keep_the_command_alive():
    """A thread that is not a daemon and outlives the command's work (as a client draining
    to a server that went away would) gets its grace, then the process exits, naming it. An
    idle thread pool's worker is no such thread: the exit ends it, so it is neither waited
    for nor named (a sweep's waited 10 s at every exit)."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", STRAGGLER], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and time.monotonic() - started < 60
    assert "nas: the work is done, but queue-drainer would keep the process alive after 0.5 s: exiting without it" \
        in done.stderr, done.stderr
    idle = subprocess.run([sys.executable, "-c", STRAGGLER.replace('.start()', '')], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert idle.returncode == 0 and "would keep the process alive" not in idle.stderr, idle.stderr


HUNG_EXIT = """
import atexit, sys, threading
import flows.cli.main as cli
cli.EXIT_STACKS_AFTER_S = 1
def work():
    if sys.argv[1] == "filtered":
        cli.console.configure(False)  # stderr through the console's filter, as main's
    atexit.register(threading.Event().wait)  # an exit handler that waits for what never comes
    print("the command's output")
    return 3
cli.main = work
sys.exit(cli.command())
"""


@pytest.mark.parametrize("stderr", ["plain", "filtered"])
def test_an_exit_that_hangs_after_the_work_names_its_place_and_ends_with_the_command_s_code(stderr):
    """An exit handler that never returns (as Prefect's queue services' drain once did, for
    18 minutes after a `nas run`): the threads' stacks go to stderr, then the process ends,
    with the command's exit code and its output, its last line through the console's filter
    too."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", HUNG_EXIT, stderr], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 3 and time.monotonic() - started < 60, done.stderr
    assert done.stdout == "the command's output\n"
    assert "most recent call first" in done.stderr and "in wait" in done.stderr  # the stack names the wait
    assert done.stderr.rstrip().endswith("nas: the work is done, but the exit hung for 1 s (the threads' stacks are "
                                         "above): exiting without it")


NESTED_FILTERS = """
import sys, time
from flows.cli import console
for _ in range(3):
    console.configure(False)  # as each `main` run in one process does
print("through three filters", file=sys.stderr, flush=True)
started = time.monotonic()
console.release_stderr()
print(f"released in {time.monotonic() - started:.2f} s", file=sys.stderr)
"""


def test_filters_stacked_by_commands_in_one_process_are_released_newest_first_and_at_once():
    """Each filter's stderr is the pipe of the one before it: released newest first, each
    closing its copy of that pipe, every line reaches the real stderr, and no filter waits
    for a pipe that stays open (5 s each, before)."""
    done = subprocess.run([sys.executable, "-c", NESTED_FILTERS], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    lines = done.stderr.splitlines()
    assert done.returncode == 0 and lines[0] == "through three filters", done.stderr
    assert lines[1].startswith("released in ") and float(lines[1].split()[2]) < 2, done.stderr


def test_the_endpoint_and_secrets_are_redacted_as_whole_values_and_names_are_left_alone(monkeypatch):
    """The endpoint, the secret key and the session token become their variable's name where
    they stand as whole values; the access key id is a name and stays; a password in a URL
    goes. A short value inside a longer word (a bucket's name) is not that value."""
    from flows.cli.console import redactor

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t/Key+x")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "tok")
    redact = redactor()
    text = ("s3://nobucket/root: key k, secret s3cr3t/Key+x, token tok (not tokens), "
            "Could not connect to the endpoint URL: \"http://127.0.0.1:9/nobucket\" via 127.0.0.1:9; "
            "https://user:pa55@example.org/a.wav")
    assert redact(text) == ("s3://nobucket/root: key k, secret <AWS_SECRET_ACCESS_KEY>, token <AWS_SESSION_TOKEN> "
                            "(not tokens), Could not connect to the endpoint URL: \"<AWS_ENDPOINT_URL>/nobucket\" via "
                            "<AWS_ENDPOINT_URL>; https://user:<password>@example.org/a.wav")
    for name in ("AWS_ENDPOINT_URL", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    assert redactor()("s3://nobucket/root; ftp://me:pw@host/x") == "s3://nobucket/root; ftp://me:<password>@host/x"


def test_a_full_disk_s_tracebacks_are_held_back_and_other_tracebacks_pass_whole():
    """What a Beam worker writes to the command's stderr: a full disk's traceback blocks (with
    their chained ones and Beam's header line) are dropped, for the command's own line says it;
    any other traceback passes, whole and in order."""
    from flows.cli.console import _Tracebacks

    full_disk = ["ERROR:sdk_worker:Error processing instruction bundle_4. Original traceback is\n",
                 "Traceback (most recent call last):\n", '  File "x.py", line 1, in f\n', "    f()\n", "    ^^^\n",
                 "OSError: [Errno 28] No space left on device\n", "\n",
                 "During handling of the above exception, another exception occurred:\n", "\n",
                 "Traceback (most recent call last):\n", '  File "y.py", line 2, in g\n',
                 "RuntimeError: OSError: [Errno 28] No space left on device [while running 'write_shards']\n",
                 "ERROR:common:OSError: [Errno 28] No space left on device\n"]
    other = ["Traceback (most recent call last):\n", '  File "z.py", line 3, in h\n', "ValueError: a bug\n"]
    lines = ["before\n", *full_disk, "between\n", *other, "after\n", *other]
    reader = _Tracebacks()
    shown = [text for line in lines for text in reader.feed(line)] + reader.flush()
    assert shown == ["before\n", "between\n", *other, "after\n", *other]
