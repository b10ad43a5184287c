"""TFRecord framing without TensorFlow: the bytes TensorFlow's writer writes, counts its reader agrees with."""

import numpy as np
import pytest
import tensorflow as tf

from nas.data.tfrecord import count_records, read_records, write_records


def test_our_files_are_tensorflows_bytes_and_counts(tmp_path):
    rng = np.random.default_rng(0)
    records = [rng.bytes(int(n)) for n in rng.integers(0, 70000, 40)] + [b""]
    ours, theirs = tmp_path / "ours.tfrecord", tmp_path / "theirs.tfrecord"
    write_records(ours, records)
    with tf.io.TFRecordWriter(str(theirs)) as writer:
        for record in records:
            writer.write(record)
    assert ours.read_bytes() == theirs.read_bytes()
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(ours))] == records
    assert count_records(ours) == len(records)
    assert list(read_records(theirs)) == records
    write_records(tmp_path / "empty", [])
    assert count_records(tmp_path / "empty") == 0


def test_a_cut_or_foreign_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "cut.tfrecord"
    write_records(path, [b"x" * 100, b"y" * 100])
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="cut.tfrecord: the last record is cut short"):
        count_records(path)
    with pytest.raises(ValueError, match="cut.tfrecord: the record at byte 116 is corrupt or cut short"):
        list(read_records(path))
    write_records(path, [b"x" * 100, b"y" * 100])
    path.write_bytes(path.read_bytes().replace(b"y" * 100, b"y" * 99 + b"z"))  # one byte of data changed
    with pytest.raises(ValueError, match="cut.tfrecord: the record at byte 116 is corrupt"):
        list(read_records(path))
    (tmp_path / "text.tfrecord").write_text("this is not a record file")
    with pytest.raises(ValueError, match="text.tfrecord: not a TFRecord file"):
        count_records(tmp_path / "text.tfrecord")
