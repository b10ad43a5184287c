"""The `benchmark` flow: a model's export measured in each runtime (`nas.export.runtimes`),
kept as `<run>/runtimes.json` beside the export, and shown as a card."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows.entry import dataset_config
from flows.evaluate import resolve_model
from nas.constants import DEFAULT_DATA_ROOT
from nas.export.bundle import PARITY_EXAMPLES, examples, spectral_loss
from nas.export.runtimes import RUNTIMES, measure
from nas.locations import resolve_root
from nas.store.artifacts import RuntimeReport
from nas.store.cache import local_folder
from nas.store.datasets import load_metadata, published_version
from nas.store.runs import load_model_summary
from tasks.cards import runtime_card


@flow(name="benchmark")
def benchmark(config_path: str, model_version: str, data_root: str = DEFAULT_DATA_ROOT, parsed: dict | None = None,
              runtimes: list[str] | None = None, budget_s: float = 10.0, reuse: bool = True) -> RuntimeReport:
    """Real-time factors of the model's export in `runtimes` (default: all), measured in
    interleaved rounds for `budget_s`; `reuse`: the run's figures of this model version if
    they cover those runtimes."""
    logger = get_run_logger()
    config, _ = dataset_config(config_path, parsed)
    root = resolve_root(data_root)
    _, layout = resolve_model(config, model_version, None, root)
    wanted = list(runtimes or RUNTIMES)
    if reuse and layout.runtimes.exists():
        done = RuntimeReport.load(layout.runtimes)
        if done.model_version == model_version and set(wanted) <= {f.runtime for f in done.runtimes}:
            logger.info("runtimes of %s are reused: %s", model_version, layout.runtimes)
            return done
    summary = load_model_summary(layout.model)
    dataset_dir = published_version(root, config.name, summary.dataset.version)
    metadata = load_metadata(dataset_dir)
    parity = examples(dataset_dir, metadata.counts.evaluated, metadata, summary.model, PARITY_EXAMPLES)
    report = measure(local_folder(layout.export), model_version, parity, tuple(wanted), budget_s, spectral_loss)
    report.save(layout.runtimes)
    for figures in report.runtimes:
        if figures.error:
            logger.warning("%s: %s could not run it: %s", model_version, figures.runtime, figures.error)
    create_markdown_artifact(markdown=runtime_card(report), key=f"runtimes-{config.name}",
                             description=f"Runtimes of {model_version}")
    return report

