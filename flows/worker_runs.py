"""Flow runs that a worker started, each a process of its own (`python -m prefect.engine`):
what marks one crashed when its machine dies, and what ends its process after its end.

**A worker that dies** (its machine lost, the process killed) takes its flow runs with it,
and nothing else tells the server: they would show Running forever. Such runs send Prefect's
heartbeats (`PREFECT_FLOWS_HEARTBEAT_FREQUENCY`, 180 s by default; `nas` commands, watched
from a console, turn them off), so the deployments' flows carry RUNNING_HOOKS: a run that
starts on a worker makes sure the server has the automation CRASH_WATCH, which marks a flow
run Crashed when CRASH_AFTER_BEATS heartbeat periods pass without a heartbeat or a final
state. Retrying it (the UI's Retry, or the deployment run again) completes it: every stage
whose product is on disk is reused, and training goes on from its newest checkpoint once the
dead trainer's lease lapses.

**At the exit of a finished run**, Prefect's queue services (logs, events) drain without a
timeout, and one has been seen to wait there forever after the run's work and final state
were done: two hours later, its server gone (Prefect 3.8.8, `_QueueServiceBase._at_exit`;
the class of PrefectHQ/prefect#14629). So the deployments' flows carry FINAL_STATE_HOOKS:
once such a run has its final state, a daemon watchdog ends the process after EXIT_GRACE_S
unless it has exited by then.

Subflows and `nas` commands (which have their own guard, flows/cli/main.py) are left alone.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from datetime import timedelta

CRASH_WATCH = "nas: flow runs whose heartbeats stop are crashed"
CRASH_AFTER_BEATS = 2  # a heartbeat late by a whole period on a busy machine is not a death
EXIT_GRACE_S = 60.0  # the drain of a healthy run takes a second or two
_exit = os._exit  # how the watchdog ends the process (a test's stand-in)


def _started_by_a_worker(flow_run) -> bool:
    """This process is the one a worker started for this very run (not a subflow's)."""
    return flow_run.parent_task_run_id is None and os.environ.get("PREFECT__FLOW_RUN_ID") == str(flow_run.id)


def crash_watch(heartbeat_s: int):
    """The automation: for each flow run that has sent a heartbeat, expect another heartbeat
    or a final state within CRASH_AFTER_BEATS periods, else set it Crashed."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    window = CRASH_AFTER_BEATS * heartbeat_s
    ends = {f"prefect.flow-run.{state}" for state in ("Completed", "Failed", "Cancelled", "Crashed")}
    return AutomationCore(
        name=CRASH_WATCH,
        description="Flow runs on workers send heartbeats; a run that stops sending them has lost its process "
                    "or its machine (flows/worker_runs.py).",
        trigger=EventTrigger(match={"prefect.resource.id": "prefect.flow-run.*"},
                             after={"prefect.flow-run.heartbeat"}, expect={"prefect.flow-run.heartbeat", *ends},
                             for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1,
                             within=timedelta(seconds=window)),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, force=True,
                                    message=f"no heartbeat for {window} s: the process or the machine running this "
                                            "flow run died; retry it to go on from its finished stages")])


def send_nas_lines(flow, flow_run, state) -> None:
    """A running hook: in a run a worker started, nas's own lines (progress, a resume) go to
    the run's log in the UI and to the worker's console, as a `nas` command sends them there
    (PREFECT_LOGGING_EXTRA_LOGGERS=nas, which a worker's environment does not set)."""
    if not _started_by_a_worker(flow_run):
        return
    ours = logging.getLogger("nas")
    ours.setLevel(logging.INFO)
    for handler in logging.getLogger("prefect.extra").handlers:  # Prefect's API handler
        if handler not in ours.handlers:
            ours.addHandler(handler)


def watch_for_crash(flow, flow_run, state) -> None:
    """A running hook: in a run a worker started, with heartbeats on, make sure the server
    has CRASH_WATCH with this run's heartbeat period (one of each name: of runs that started
    at once and both created it, the first listed is kept)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    heartbeat_s = get_current_settings().flows.heartbeat_frequency
    if heartbeat_s is None or not _started_by_a_worker(flow_run):
        return
    wanted = crash_watch(heartbeat_s)
    with get_client(sync_client=True) as client:
        found = client.read_automations_by_name(CRASH_WATCH)
        if not found:
            client.create_automation(wanted)
            found = client.read_automations_by_name(CRASH_WATCH)
        kept, *extra = found
        for automation in extra:
            client.delete_automation(automation.id)
        if kept.trigger.within != wanted.trigger.within:
            client.update_automation(kept.id, wanted)


def end_worker_process(flow, flow_run, state) -> None:
    """A final-state hook: in the process a worker started for this very run, the watchdog."""
    if not _started_by_a_worker(flow_run):
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


RUNNING_HOOKS = {"on_running": [send_nas_lines, watch_for_crash]}
FINAL_STATE_HOOKS = {name: [end_worker_process] for name in ("on_completion", "on_failure", "on_crashed",
                                                            "on_cancellation")}
WORKER_RUN_HOOKS = {**RUNNING_HOOKS, **FINAL_STATE_HOOKS}
