"""ddsp's record schema, windowing, and content-keyed splits and shards.

Every chunk and example has a key derived from content (the source file's sha256 and
positions), never from Python's salted `hash()`: the same inputs give the same split,
the same shard and the same order, so records are byte-identical run to run.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..constants import SAMPLE_RATE

SPLITS = ("train", "eval")
FRAME_KEYS = ("f0_hz", "f0_confidence", "loudness_db", "power_db")  # the frame-rate features of a record


@dataclass(frozen=True)
class Chunk:
    """A non-overlapping piece of one source file, the unit of the train/eval split."""
    source_sha256: str
    index: int
    start_s: float
    split: str

    @property
    def key(self) -> str:
        return chunk_key(self.source_sha256, self.index)


def chunk_key(source_sha256: str, index: int) -> str:
    return hashlib.sha256(f"{source_sha256}:{index}".encode()).hexdigest()


def chunk_starts(duration_s: float, chunk_secs: float, example_secs: float) -> list[float]:
    """Starts of non-overlapping chunks; a short tail is kept when it holds an example."""
    n_full = int(duration_s // chunk_secs)
    starts = [i * chunk_secs for i in range(n_full)]
    if duration_s - n_full * chunk_secs >= example_secs:
        starts.append(n_full * chunk_secs)
    return starts


def assign_splits(chunks: list[tuple[str, int, float]], eval_fraction: float) -> list[Chunk]:
    """The chunks with the smallest keys, ceil(fraction * n) of them, go to eval.

    Ranking (not thresholding) keys gives the exact share even for small datasets."""
    ranked = sorted(chunks, key=lambda c: chunk_key(c[0], c[1]))
    n_eval = math.ceil(eval_fraction * len(ranked)) if eval_fraction > 0 and len(ranked) > 1 else 0
    eval_keys = {chunk_key(sha, i) for sha, i, _ in ranked[:n_eval]}
    return [Chunk(sha, i, start, "eval" if chunk_key(sha, i) in eval_keys else "train")
            for sha, i, start in chunks]


def windows(n: int, size: int, hop: int) -> range:
    """Window starts over a sequence of n as ddsp's `_split_example` (no end padding)."""
    return range(0, n - size + 1, hop)


def split_chunk(features: dict[str, np.ndarray], sample_rate: int, frame_rate: int,
                example_secs: float, hop_secs: float, centered: bool) -> list[dict[str, np.ndarray]]:
    """Windows of `example_secs` every `hop_secs`; centred frames get one extra frame."""
    rates = {"audio": sample_rate, "audio_16k": SAMPLE_RATE}
    sizes = {k: round(example_secs * r) for k, r in rates.items()}
    hops = {k: round(hop_secs * r) for k, r in rates.items()}
    frame_size = round(example_secs * frame_rate) + (1 if centered else 0)
    frame_hop = round(hop_secs * frame_rate)
    counts = [len(windows(len(features[k]), sizes[k], hops[k])) for k in rates]
    counts.append(len(windows(len(features["f0_hz"]), frame_size, frame_hop)))
    examples = []
    for i in range(min(counts)):
        example = {k: features[k][i * hops[k]: i * hops[k] + sizes[k]] for k in rates}
        for k in FRAME_KEYS:
            example[k] = features[k][i * frame_hop: i * frame_hop + frame_size]
        examples.append(example)
    return examples


def example_key(chunk: str, index: int) -> str:
    return hashlib.sha256(f"{chunk}:{index}".encode()).hexdigest()


def shard_of(key: str, n_shards: int) -> int:
    return int(key[:16], 16) % n_shards


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def serialize(example: dict[str, np.ndarray]) -> bytes:
    """A `tf.train.Example` of float lists, encoded directly in protobuf's wire format.

    Example{features=1: Features{feature=1: map entry{key=1, value=2: Feature{float_list=2:
    FloatList{value=1 packed}}}}}. Keys in sorted order, so the bytes are canonical; this is
    ~30x faster than building the message with `tf.train.FloatList(value=...)`."""
    entries = b"".join(
        _field(1, _field(1, key.encode()) + _field(2, _field(2, _field(1, np.asarray(
            example[key], "<f4").tobytes()))))
        for key in sorted(example))
    return _field(1, entries)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(field number, payload) of a message made only of length-delimited fields."""
    pos = 0
    while pos < len(data):
        tag, pos = _read_varint(data, pos)
        if tag & 7 != 2:
            raise ValueError(f"protobuf field {tag >> 3} has wire type {tag & 7}; only float-list examples are read")
        length, pos = _read_varint(data, pos)
        yield tag >> 3, data[pos:pos + length]
        pos += length


def parse(record: bytes) -> dict[str, np.ndarray]:
    """The float lists of a `tf.train.Example` as `serialize` writes them (packed)."""
    example = {}
    for _, features in _fields(record):
        for _, entry in _fields(features):
            fields = dict(_fields(entry))
            (kind, float_list), = _fields(fields[2])
            if kind != 2:
                raise ValueError(f"feature {fields[1].decode()!r} is not a float list")
            example[fields[1].decode()] = np.concatenate(
                [np.frombuffer(v, "<f4") for _, v in _fields(float_list)] or [np.zeros(0, "<f4")])
    return example


def shard_name(split: str, index: int, n_shards: int) -> str:
    return f"{split}.tfrecord-{index:05d}-of-{n_shards:05d}"


def file_pattern(split: str) -> str:
    return f"{split}.tfrecord-*"
