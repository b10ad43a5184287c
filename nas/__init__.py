"""nas: turn recordings of one instrument into a fast neural synthesizer."""

import os

# ddsp 3.7 is written against Keras 2; TensorFlow 2.21 reaches it through tf-keras.
# This must be set before TensorFlow is first imported anywhere in the process.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .allocator import keep_freed_memory, pool_tensorflow_buffers  # noqa: E402
from .machine import persist_compiled_steps  # noqa: E402

keep_freed_memory()
pool_tensorflow_buffers()
persist_compiled_steps()

__version__ = "0.1.0"
