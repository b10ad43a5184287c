"""Raw pitch accuracy of a prepared demo dataset's f0 against the demo's exact truth.

    .venv/bin/python benchmarks/crepe_accuracy.py nas-data/demo-violin/<version>

Reads `features.parquet` (every frame `prepare` computed, all splits) and the
ground truth in `data/demo-violin/f0/`. Results: benchmarks/results/crepe_accuracy.json. RPA: share of voiced frames within 50 cents;
"steady" leaves out frames within 40 ms of a note start or end, where the rendered
attack and release make the truth ambiguous.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from record import save

from nas.store.datasets import DatasetFiles, load_metadata

REPO = Path(__file__).resolve().parents[1]


def main(dataset_dir: Path) -> None:
    features = pd.read_parquet(DatasetFiles(dataset_dir).features)
    rows = []
    for path, part in features.groupby("path"):
        truth = np.loadtxt(REPO / "data/demo-violin/f0" / (Path(path).stem + ".csv"), delimiter=",", skiprows=1)
        index = np.round(part.time_s.to_numpy() * 100).astype(int)  # truth every 10 ms
        keep = index < len(truth)
        f0, true = part.f0_hz.to_numpy()[keep], truth[index[keep]]
        voiced = true[:, 1] > 0
        cents = np.abs(1200 * np.log2(np.where(voiced, f0, 1) / np.where(voiced, true[:, 1], 1)))
        rows.append(pd.DataFrame({"hit": cents < 50, "voiced": voiced, "steady": voiced & (true[:, 2] > 0.04)}))
    frames = pd.concat(rows)
    meta = load_metadata(dataset_dir)
    report = {
        "crepe": meta.crepe.model_dump(), "frame_rate": meta.frame_rate, "frames": len(frames),
        "rpa_steady": float(frames.hit[frames.steady].mean()),
        "rpa_all_voiced": float(frames.hit[frames.voiced].mean()),
    }
    print(json.dumps(report, indent=2))
    save("crepe_accuracy", report)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
