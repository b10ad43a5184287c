"""A process that imports nas keeps the memory it frees (nas/allocator.py): buffers of
megabytes allocated again and again fault in their pages once, not each time."""

from __future__ import annotations

import os
import subprocess
import sys

from nas import allocator
from tests.conftest import REPO

# Buffers of TensorFlow's sizes (up to glibc's largest heap allocation, 32 MB), allocated
# and freed 30 times; the page faults taken meanwhile.
FAULTS = """
import resource, sys
if sys.argv[1] == "nas":
    import nas
import numpy as np
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(30):
    held = [np.ones(size << 20, np.uint8) for size in (3, 12, 24, 6, 30)]
    del held
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(imports: str) -> int:
    env = {k: v for k, v in os.environ.items() if k not in (*allocator.USER_SETTINGS, "GLIBC_TUNABLES")}
    done = subprocess.run([sys.executable, "-c", FAULTS, imports], cwd=REPO, env=env, capture_output=True, text=True,
                          check=True)
    return int(done.stdout.split()[-1])


def test_a_process_that_imports_nas_faults_in_its_buffers_once():
    plain, kept = _faults("plain"), _faults("nas")
    # 75 MB a round: glibc's defaults return most of it and fault it in again (about 48,000
    # faults here), nas keeps it after the first round (about 2,800)
    assert kept < plain / 5, (kept, plain)


def test_the_user_s_own_malloc_settings_stand(monkeypatch):
    monkeypatch.setenv("MALLOC_TOP_PAD_", "0")
    assert allocator.keep_freed_memory() is False
    monkeypatch.delenv("MALLOC_TOP_PAD_")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=0")
    assert allocator.keep_freed_memory() is False
