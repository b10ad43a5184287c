"""Messy folders: the corpus of bad and odd files (tests/corpus.py) through the prepare flow,
and config errors through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, artifacts_of, write_config
from tests.corpus import OUTCOMES, make_corpus


def test_every_bad_or_odd_file_gets_its_documented_outcome(prefect_server, tmp_path):
    from flows.prepare import prepare

    make_corpus(tmp_path)
    # 25 frames/s: CREPE's share of the 10-minute file stays small; the test is about the files
    config = write_config(tmp_path / "corpus.yaml", name="corpus", frame_rate=25, chunk_secs=20.0, hop_secs=4.0,
                          eval_fraction=0.1, wandb={"mode": "disabled"})
    state = prepare(str(config), str(tmp_path / "data"), return_state=True)
    assert state.is_completed(), state.message
    dataset_dir = tmp_path / "data" / "corpus" / state.result().rsplit("/", 1)[-1]

    manifest = {row["path"].rsplit("/", 1)[-1]: row for row in pq.read_table(dataset_dir / "manifest.parquet")
                .to_pylist()}
    assert sorted(manifest) == sorted(OUTCOMES)
    for name, expected in OUTCOMES.items():
        row = manifest[name]
        assert row["status"] == expected.status, (name, row)
        told = row["reason"] if expected.status == "skipped" else row["flags"]
        assert expected.text in told, (name, row)
        if expected.status == "ok" and not expected.text:
            assert row["flags"] == "", (name, row)  # clean files are not flagged
        if expected.rate:
            assert (row["original_rate"], row["channels"]) == (expected.rate, expected.channels), (name, row)

    # every usable file made records: the features cover each one, the long one in full
    features = pq.read_table(dataset_dir / "features.parquet", columns=["path", "time_s"]).to_pandas()
    covered = features.groupby(features["path"].str.rsplit("/", n=1).str[-1])["time_s"].max()
    assert sorted(covered.index) == sorted(n for n, o in OUTCOMES.items() if o.status == "ok")
    assert covered["long-10min.flac"] > 595

    table = json.loads(artifacts_of(state.state_details.flow_run_id)["dataset-corpus-sources"].data)
    shown = {row["file"]: row for row in table}
    for name, expected in OUTCOMES.items():
        assert shown[name]["status"] == expected.status, name
        assert expected.text in shown[name]["reason" if expected.status == "skipped" else "flags"], name


@pytest.mark.parametrize("settings, says", [
    ({"colour": "blue"}, "colour: unknown key"),
    ({"example_secs": "long"}, "example_secs:"),
    ({"audio": ["no-such-folder/"]}, "audio: 'no-such-folder/' matches no files"),
    ({"name": "../../outside"}, "name: '../../outside' would put the dataset outside its folder"),
])
def test_cli_config_errors_name_the_key_and_file(small_sources, tmp_path, settings, says):
    config = write_config(tmp_path / "bad.yaml", **settings)
    (tmp_path / "audio").symlink_to(small_sources / "audio")
    done = subprocess.run([sys.executable, "-m", "flows.cli", "prepare", str(config), "--data-root",
                           str(tmp_path / "data")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert says in done.stderr and str(config) in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()  # nothing written
