"""Record encoding, windows and content-keyed splits (unit level)."""

import numpy as np
import pytest
import tensorflow as tf

from nas.data.records import assign_splits, chunk_starts, example_key, parse, serialize, shard_of, split_chunk


def test_serialize_is_a_tf_example():
    rng = np.random.default_rng(0)
    example = {k: rng.standard_normal(n).astype(np.float32) for k, n in
               [("audio", 300), ("audio_16k", 300), ("f0_hz", 7), ("f0_confidence", 7), ("loudness_db", 7)]}
    parsed = tf.train.Example.FromString(serialize(example))
    reference = tf.train.Example(features=tf.train.Features(feature={
        k: tf.train.Feature(float_list=tf.train.FloatList(value=v)) for k, v in example.items()}))
    assert parsed == reference
    back = parse(serialize(example))
    assert set(back) == set(example)
    for k, v in example.items():
        np.testing.assert_array_equal(back[k], v)
    with pytest.raises(ValueError, match="feature 'n' is not a float list"):
        parse(tf.train.Example(features=tf.train.Features(feature={
            "n": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x"]))})).SerializeToString())


def test_windows_follow_ddsp_centred_framing():
    n_audio, frames = 10 * 16000, 10 * 50 + 1
    features = {"audio": np.arange(n_audio, dtype=np.float32), "audio_16k": np.arange(n_audio, dtype=np.float32),
                "f0_hz": np.arange(frames, dtype=np.float32), "f0_confidence": np.zeros(frames, np.float32),
                "loudness_db": np.zeros(frames, np.float32), "power_db": np.arange(frames, dtype=np.float32)}
    examples = split_chunk(features, 16000, 50, 4.0, 1.0, centered=True)
    assert len(examples) == 7  # starts 0..6 s
    last = examples[-1]
    assert last["audio"][0] == 6 * 16000 and len(last["audio"]) == 64000
    assert last["f0_hz"][0] == last["power_db"][0] == 300 and len(last["f0_hz"]) == len(last["power_db"]) == 201


def test_chunks_and_splits_are_deterministic_and_exact():
    assert chunk_starts(50.0, 20.0, 4.0) == [0.0, 20.0, 40.0]
    assert chunk_starts(43.0, 20.0, 4.0) == [0.0, 20.0]  # a 3 s tail holds no example
    chunks = [(f"{i:064x}", j, 20.0 * j) for i in range(7) for j in range(3)]
    first, second = assign_splits(chunks, 0.1), assign_splits(list(reversed(chunks)), 0.1)
    evals = {(c.source_sha256, c.index) for c in first if c.split == "eval"}
    assert len(evals) == 3  # ceil(0.1 * 21)
    assert evals == {(c.source_sha256, c.index) for c in second if c.split == "eval"}
    assert {shard_of(example_key("chunk", k), 4) for k in range(64)} == {0, 1, 2, 3}
