"""Looking for the hang at exit once seen after a `nas run` on a bucket (issue 38): the run
finished its work and its process never exited.

    .venv/bin/python scripts/exit_loops.py [--loops 50]

Against moto's S3 server and a Prefect server of its own, each loop is a new `nas run` of a
small dataset whose audio and data root are in a bucket, with one more training step than the
loop before: training resumes from the bucket's checkpoint, then evaluates and exports, as the
third machine of tests/test_object_store.py did when the hang was seen. A loop whose process
is alive EXIT_WAIT_S after its last line of output counts as a hang (its stacks are in its
stderr: the command's guard prints them); so does one where the guard had to end a thread.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from flows.cli.local_server import local_server  # noqa: E402
from tests.s3_server import moto_server  # noqa: E402

EXIT_WAIT_S = 30.0


def _loop(run: list[str], env: dict) -> dict:
    """One `nas run`: how long its process took to exit after its last line of output."""
    process = subprocess.Popen(run, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = [time.monotonic()]
    err: list[str] = []

    def read(stream, keep):
        for line in stream:
            last[0] = time.monotonic()
            keep.append(line)

    readers = [threading.Thread(target=read, args=(process.stdout, [])),
               threading.Thread(target=read, args=(process.stderr, err))]
    for reader in readers:
        reader.start()
    while process.poll() is None:
        if time.monotonic() - last[0] > EXIT_WAIT_S + 600:  # the guard's stacks came long ago
            process.kill()
        time.sleep(0.1)
    exited = time.monotonic()
    for reader in readers:
        reader.join()
    stderr = "".join(err)
    return {"code": process.returncode, "exit_after_output_s": exited - last[0],
            "guard_ended_a_thread": "would keep the process alive" in stderr,
            "stacks": "Timeout (0:02:00)!" in stderr, "stderr_tail": stderr[-1500:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loops", type=int, default=50)
    args = parser.parse_args()
    import s3fs
    import yaml

    with tempfile.TemporaryDirectory(prefix="nas-exit-") as work, moto_server() as (endpoint, _), \
            local_server(Path(work) / "prefect-home") as server:
        aws = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "nas-loop-key", "AWS_SECRET_ACCESS_KEY": "nas-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}
        os.environ.update(aws)
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        fs.mkdir("loops")
        fs.put_file(str(REPO / "data" / "demo-violin" / "audio" / "violin-00.flac"), "loops/audio/violin-00.flac")
        config = Path(work) / "loops.yaml"
        config.write_text(yaml.safe_dump({
            "name": "loops", "audio": ["s3://loops/audio/"], "example_secs": 4.0, "hop_secs": 2.0, "chunk_secs": 8.0,
            "eval_fraction": 0.25, "crepe": {"capacity": "tiny"}, "wandb": {"project": "nas-loops", "mode": "offline"}}))
        env = {**server.env, **aws, "NAS_CACHE_DIR": str(Path(work) / "cache")}
        hangs = 0
        for i in range(args.loops):
            run = [str(REPO / ".venv" / "bin" / "nas"), "run", str(config), "--data-root", "s3://loops/root",
                   "--steps", str(5 + i), "--set", "optim.batch_size=4"]
            started = time.monotonic()
            result = _loop(run, env)
            hung = result["exit_after_output_s"] > EXIT_WAIT_S or result["guard_ended_a_thread"] or result["stacks"]
            hangs += hung
            print(f"loop {i + 1}/{args.loops}: exit code {result['code']}, {time.monotonic() - started:.0f} s, "
                  f"exited {result['exit_after_output_s']:.1f} s after its last line"
                  + (f"; HUNG:\n{result['stderr_tail']}" if hung else ""), flush=True)
            if result["code"] != 0:
                print(result["stderr_tail"], flush=True)
        print(f"{hangs} of {args.loops} loops hung at exit")


if __name__ == "__main__":
    main()
