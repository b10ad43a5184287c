"""A process that imports nas keeps the memory it frees (nas/allocator.py): buffers of
megabytes allocated again and again fault in their pages once, not each time, whether
glibc or TensorFlow allocates them."""

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
# Above glibc's largest heap allocation: a harmonic bank of a batch of 4 (4 x 64,000 x 100
# floats, 102 MB, 25,000 pages) and its sine, made 20 times by TensorFlow.
TF_FAULTS = """
import resource
import nas
import tensorflow as tf
x = tf.ones([4, 64000, 1])
bank = lambda: tf.reduce_sum(tf.sin(x * tf.range(100, dtype=tf.float32)))
bank()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    bank()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
TF_SETTINGS = ("TF_CPU_ALLOCATOR_USE_BFC", "TF_CPU_BFC_MEM_LIMIT_IN_MB")


def _faults(imports: str, script: str = FAULTS) -> int:
    drop = (*allocator.USER_SETTINGS, "GLIBC_TUNABLES", *TF_SETTINGS)
    env = {k: v for k, v in os.environ.items() if k not in drop}
    done = subprocess.run([sys.executable, "-c", script, imports], cwd=REPO, env=env, capture_output=True, text=True,
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


def test_tensorflow_s_buffers_above_glibc_s_largest_are_pooled():
    # glibc maps each afresh: 1,000,000 faults here for the 20 rounds; pooled, a handful
    assert _faults("nas", TF_FAULTS) < 25_000


def test_the_user_s_own_tensorflow_allocator_settings_stand(monkeypatch):
    monkeypatch.setenv("TF_CPU_ALLOCATOR_USE_BFC", "false")
    monkeypatch.delenv("TF_CPU_BFC_MEM_LIMIT_IN_MB", raising=False)
    allocator.pool_tensorflow_buffers()
    assert os.environ["TF_CPU_ALLOCATOR_USE_BFC"] == "false"
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert int(os.environ["TF_CPU_BFC_MEM_LIMIT_IN_MB"]) == memory >> 20  # the machine's, not TensorFlow's 64 GB
    monkeypatch.setenv("TF_CPU_BFC_MEM_LIMIT_IN_MB", "4096")
    allocator.pool_tensorflow_buffers()
    assert os.environ["TF_CPU_BFC_MEM_LIMIT_IN_MB"] == "4096"
