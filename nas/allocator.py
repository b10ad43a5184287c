"""Memory settings for TensorFlow's work: buffers of megabytes, freed and allocated again
every step.

By default glibc hands each freed buffer above its threshold back to the kernel and
faults it in again at the next allocation. Kept in the process instead, a 20-step
training with an eval loss and an audio sample every 2 steps (`benchmarks/allocator.py`)
took 4.1 s of system time instead of 9.8, 1.26 million page faults instead of 3.1, and
0.84x the CPU in all, for a peak of 2.09 GB instead of 1.88. Buffers above 32 MB (glibc's
largest heap allocation) are still mapped afresh each time by glibc: a harmonic bank of a
batch of 4 is 102 MB. So TensorFlow's own CPU allocator pools its buffers too (its BFC
allocator, which it uses for host memory beside a GPU), up to the machine's memory rather
than its default cap of 64 GB. Against glibc's settings alone, the same training took 1.1 s
of system time instead of 3.5 and 0.26 million page faults instead of 1.25, but 2.5 s more
user time: the same CPU in all, and a peak of 1.78 GB instead of 2.03.

Applied when `nas` is imported, so every process that runs nas code (commands, flow runs,
Dask and Beam workers) has it before TensorFlow allocates. Settings the user made through
glibc's own MALLOC_*_ variables or GLIBC_TUNABLES stand, and elsewhere than glibc its malloc
is left alone; so do the user's TF_CPU_ALLOCATOR_USE_BFC and TF_CPU_BFC_MEM_LIMIT_IN_MB."""

from __future__ import annotations

import ctypes
import os

# mallopt's parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
SETTINGS = {
    M_MMAP_THRESHOLD: 32 << 20,  # glibc's largest: buffers up to 32 MB come from the heap, not mmap
    M_TRIM_THRESHOLD: 1 << 30,  # free memory at the heap's top returned only beyond 1 GB
    M_TOP_PAD: 64 << 20,  # and each growth of the heap asks for 64 MB more, for the next buffers
}
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
USER_TUNABLES = ("glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold", "glibc.malloc.top_pad")  # GLIBC_TUNABLES


def keep_freed_memory() -> bool:
    """Applies SETTINGS; whether they were applied."""
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):  # not a glibc system
        return False
    tunables = os.getenv("GLIBC_TUNABLES", "")
    if not glibc or any(name in os.environ for name in USER_SETTINGS) or any(t in tunables for t in USER_TUNABLES):
        return False
    mallopt = ctypes.CDLL(None).mallopt
    return all(mallopt(parameter, value) == 1 for parameter, value in SETTINGS.items())


def pool_tensorflow_buffers() -> None:
    """TensorFlow's CPU allocator as a pool (BFC) limited by the machine's memory. TensorFlow
    reads these when it first allocates, and child processes inherit them."""
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    try:
        memory_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20
    except (AttributeError, ValueError, OSError):  # no sysconf: TensorFlow's own cap
        return
    os.environ.setdefault("TF_CPU_BFC_MEM_LIMIT_IN_MB", str(memory_mb))
