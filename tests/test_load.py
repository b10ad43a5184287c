"""Many datasets at once, small: benchmarks/load.py's scenario with 2 datasets (the benchmark
runs 20). About 70 s on 2 idle cores, 50 s of it from the first `nas register` to the
second pipeline's end."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import REPO, migrated_home

sys.path.insert(0, str(REPO / "benchmarks"))
from load import run_load  # noqa: E402


@pytest.mark.slow
def test_datasets_registered_at_once_each_run_their_pipeline_exactly_once(tmp_path):
    migrated_home(tmp_path / "prefect-home")  # where run_load starts its server
    result = run_load(tmp_path, datasets=2, workers=1, timeout=600, progress=lambda line: None)
    assert result["not_completed"] == [] and result["duplicates"] == [] and result["lost"] == []
    assert result["completed_once"] == 2 and result["flow_runs"] == 2
    # both ran at once (the deployment's limit is 2), watched by the probe of the API
    assert result["most_at_once"] == 2 and result["api_queries"] > 10
    assert 1.0 < result["peak_rss_gb"] < 16
    for name in ("load-00", "load-01"):  # each pipeline's product, once
        assert len(list((tmp_path / "nas-data" / name / "runs").glob("*/export/export.json"))) == 1
