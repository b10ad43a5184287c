"""The end of a flow run that a worker started: a process of its own (`python -m prefect.engine`).

At that process's exit, Prefect's queue services (logs, events) drain without a timeout, and
one has been seen to wait there forever after the run's work and final state were done: two
hours later, its server gone (Prefect 3.8.8, `_QueueServiceBase._at_exit`; the class of
PrefectHQ/prefect#14629). So the deployments' flows carry FINAL_STATE_HOOKS: once such a run
has its final state, a daemon watchdog ends the process after EXIT_GRACE_S unless it has
exited by then. Subflows and `nas` commands (which have their own guard, flows/cli/main.py)
are left alone.
"""

from __future__ import annotations

import os
import sys
import threading
import time

EXIT_GRACE_S = 60.0  # the drain of a healthy run takes a second or two
_exit = os._exit  # how the watchdog ends the process (a test's stand-in)


def end_worker_process(flow, flow_run, state) -> None:
    """A final-state hook: in the process a worker started for this very run, the watchdog."""
    if flow_run.parent_task_run_id is not None or os.environ.get("PREFECT__FLOW_RUN_ID") != str(flow_run.id):
        return
    code = 0 if state.is_completed() else 1

    def end() -> None:
        time.sleep(EXIT_GRACE_S)
        print(f"nas: flow run {flow_run.id} ended {EXIT_GRACE_S:g} s after its final state; its exit was "
              "still waiting on Prefect's services", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        _exit(code)

    threading.Thread(target=end, name="nas-engine-exit", daemon=True).start()


FINAL_STATE_HOOKS = {name: [end_worker_process] for name in ("on_completion", "on_failure", "on_crashed",
                                                            "on_cancellation")}
