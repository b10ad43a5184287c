"""TFRecord files without TensorFlow: the framing TensorFlow's writer and reader use
(uncompressed), so Beam workers and record counts need no TensorFlow import.

A record is its length (uint64, little-endian), the masked CRC-32C of those 8 bytes, the
data, and the masked CRC-32C of the data (tensorflow/core/lib/io/record_writer.cc).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import google_crc32c

_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF)


def framed(record: bytes) -> bytes:
    length = struct.pack("<Q", len(record))
    return length + masked_crc(length) + record + masked_crc(record)


def write_records(path: Path, records: Iterable[bytes]) -> None:
    with open(path, "wb") as f:
        for record in records:
            f.write(framed(record))


def _record_length(header: bytes, path: Path, offset: int) -> int:
    """The data length a record's 12-byte header gives, its checksum checked."""
    if len(header) < 12 or masked_crc(header[:8]) != header[8:]:
        raise ValueError(f"{path}: not a TFRecord file, or cut short, at byte {offset}")
    return struct.unpack("<Q", header[:8])[0]


def read_records(path: Path) -> Iterator[bytes]:
    """The records of a file in order, one in memory at a time, every checksum checked."""
    with path.open("rb") as f:
        offset = 0
        while header := f.read(12):
            length = _record_length(header, path, offset)
            record, crc = f.read(length), f.read(4)
            if len(record) < length or masked_crc(record) != crc:
                raise ValueError(f"{path}: the record at byte {offset} is corrupt or cut short")
            yield record
            offset += 16 + length


def digest_records(path: Path) -> tuple[int, int, str]:
    """(records, bytes, sha256) of a file read once, front to back (an object in a bucket:
    one pass, where seeking from header to header would ask for each range)."""
    digest, count, offset = hashlib.sha256(), 0, 0
    with path.open("rb") as f:
        while header := f.read(12):
            length = _record_length(header, path, offset)
            rest = f.read(length + 4)
            if len(rest) < length + 4:
                raise ValueError(f"{path}: the last record is cut short")
            digest.update(header)
            digest.update(rest)
            offset += 16 + length
            count += 1
    return count, offset, digest.hexdigest()


def count_records(path: Path) -> int:
    """Records in a file, reading only their headers (each length's checksum is checked)."""
    count, offset = 0, 0
    with path.open("rb") as f:
        size = f.seek(0, 2)
        while offset < size:
            f.seek(offset)
            offset += 16 + _record_length(f.read(12), path, offset)
            count += 1
    if offset != size:
        raise ValueError(f"{path}: the last record is cut short")
    return count
