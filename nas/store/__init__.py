"""The data root's one owner: every folder and file name under it is spelled here.

    <root>/<dataset>/<version>/                  a published dataset (DatasetLayout.final)
    <root>/<dataset>/<version>.partial/          its staging folder while it is built
    <root>/<dataset>/evaluations.parquet         every evaluation of every model of the dataset
    <root>/<dataset>/runs/<run id>/              one training run (RunLayout): checkpoints, model/,
                                                 evaluations/<id>/, export/, runtimes.json
    <root>/sweeps/<name>-<id>/                   one sweep (SweepLayout): summary.parquet, plots, report
"""
