"""The `nas` command line."""

from __future__ import annotations

import argparse
import concurrent.futures.thread
import os
import sys
import threading
import time

from flows.cli import admin, batches, console, playing, stages
from flows.cli.common import UserError

COMMANDS = (stages, batches, playing, admin)  # each adds its commands, which set `run`


def build_parser() -> argparse.ArgumentParser:
    """Every command and flag (the docs' CLI reference is generated from it)."""
    parser = argparse.ArgumentParser(prog="nas", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also print what TensorFlow, Beam and the other libraries log (or NAS_LOG_LEVEL=DEBUG)")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console.configure(console.verbose_requested(args.verbose))
    try:
        return args.run(args)
    except UserError as error:
        print(f"nas: {error}", file=sys.stderr)
        return 2


EXIT_STACKS_AFTER_S = 120  # then the process exits anyway (_end_hung_exit)
THREADS_GRACE_S = 10.0


def stragglers() -> list[threading.Thread]:
    """Threads that would keep the process alive once the command's work is done. An idle
    ThreadPoolExecutor's workers are not among them: the interpreter's exit wakes and joins
    them (concurrent.futures registers that), so waiting for them would only cost the grace."""
    frames = sys._current_frames()
    return [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()
            and not _idle_pool_worker(frames.get(t.ident))]


def _idle_pool_worker(frame) -> bool:
    # blocked in the C SimpleQueue.get of its work queue, so no Python frame above its loop's
    return frame is not None and frame.f_code is concurrent.futures.thread._worker.__code__


def command() -> int:
    """The `nas` command: `main`, then the process exits. A thread that is not a daemon and
    outlives the work (a library's client draining a queue to a server that went away) gets
    THREADS_GRACE_S to finish; then the process exits anyway, naming it. Should the exit
    still hang (an exit handler waiting on something), every thread's stack goes to stderr
    after EXIT_STACKS_AFTER_S, so that the hang names its place, and the process exits with
    the command's code: its work is done and published."""
    code = main()
    deadline = time.monotonic() + THREADS_GRACE_S
    for thread in stragglers():
        thread.join(max(0.0, deadline - time.monotonic()))
    left = stragglers()
    if left:
        print(f"nas: the work is done, but {', '.join(t.name for t in left)} would keep the process alive "
              f"after {THREADS_GRACE_S:g} s: exiting without it", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        console.release_stderr()
        os._exit(code)
    import faulthandler
    import gc

    faulthandler.dump_traceback_later(EXIT_STACKS_AFTER_S, file=sys.stderr)
    threading.Thread(target=_end_hung_exit, args=(code,), name="nas-exit-watch", daemon=True).start()
    # The interpreter's last collections would walk every object TensorFlow and the other
    # libraries made, about 3 s of a training command's exit; frozen, they are only freed.
    gc.freeze()
    return code


def _end_hung_exit(code: int) -> None:
    """A daemon's wait, ended with the process on a normal exit. A `nas run` whose work and
    output were done once hung at its exit for 18 minutes (the suite's smoke run, on
    2026-12-07), as Prefect's queue services' drain at exit has hung worker runs
    (flows/worker_runs.py): a second after the stacks, it ends. The stacks stay with
    faulthandler's own timer, which dumps them even where no Python thread can run."""
    time.sleep(EXIT_STACKS_AFTER_S + 1)
    sys.stdout.flush()
    print(f"nas: the work is done, but the exit hung for {EXIT_STACKS_AFTER_S} s (the threads' stacks are above): "
          "exiting without it", file=sys.stderr, flush=True)
    console.release_stderr()  # else that line can be left in the filter's pipe
    os._exit(code)
