"""The docs site: it builds with `mkdocs build --strict` (a broken link, a missing page or a
failed generation fails), its generated reference covers every config key and CLI flag,
every YAML config example validates, and every `nas` command line parses."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from scripts import benchmarks_page, reference
from flows.cli.main import build_parser
from nas.config import DatasetConfig
from nas.config.presets import TrainConfig
from tests.conftest import REPO

DOCS = REPO / "docs"
PAGES = sorted(DOCS.rglob("*.md"))


def _code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of fenced blocks, and ("", body) of indented ones."""
    fenced = [(m.group(1), m.group(2)) for m in re.finditer(r"(?ms)^```(\w*)\n(.*?)^```", text)]
    unfenced = re.sub(r"(?ms)^```.*?^```", "", text)
    indented = [("", re.sub(r"(?m)^ +", "", m.group(0))) for m in re.finditer(r"(?m)(?:^ {4,}\S.*\n)+", unfenced)]
    return fenced + indented


def test_the_site_builds_strictly(tmp_path):
    # run from elsewhere, as `make docs`'s entry script is: nothing of the repository is on the path but what
    # the hooks put there
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                           "--site-dir", str(tmp_path / "site")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    config_page = (tmp_path / "site" / "reference" / "config" / "index.html").read_text()
    for key, *_ in reference.fields(DatasetConfig):
        assert f"<code>{key}</code>" in config_page, key
    assert (tmp_path / "site" / "guides" / "sweeps" / "index.html").is_file()
    home = (tmp_path / "site" / "index.html").read_text()  # what a user gets: heard and seen, not only read
    media = re.findall(r'<(?:audio|img)[^>]* src="([^"]+)"', home)
    assert len([m for m in media if m.endswith(".wav")]) == 2 and len([m for m in media if m.endswith(".png")]) >= 2
    assert all((tmp_path / "site" / m).is_file() for m in media), media
    benchmarks = (tmp_path / "site" / "benchmarks" / "index.html").read_text()
    assert "<!-- results" not in benchmarks  # every marker became its tables
    assert benchmarks.count("<em>Measured ") == len(benchmarks_page.markers((DOCS / "benchmarks.md").read_text()))


def test_the_reference_covers_every_key_and_flag():
    config_page = reference.config_page()
    keys = [k for k, *_ in reference.fields(DatasetConfig)] + [k for k, *_ in reference.fields(TrainConfig)]
    assert len(keys) > 40
    for key in keys:
        if not key.startswith("model."):  # the model's keys are on the presets page
            assert f"`{key}`" in config_page, key
    presets_page = reference.presets_page()
    for key, *_ in reference.fields(TrainConfig):
        if key.startswith("model."):
            assert f"`{key}`" in presets_page, key
    cli_page = reference.cli_page()
    commands = reference.commands()
    assert {"run", "sweep", "render", "play"} <= set(commands)
    for name, command in commands.items():
        section = cli_page.split(f"## `nas {name}`", 1)[1].split("\n## ", 1)[0]
        for action in reference.flags(command):
            spelled = ", ".join(action.option_strings) or action.dest
            assert f"`{spelled}`" in section, (name, spelled)
    data_root = reference.data_root_page()
    for name in ("dataset.json", "metrics.parquet", "export", "runtimes.json", "summary.parquet", "frontier.png"):
        assert f"`{name}`" in data_root, name


def _lines(page) -> list[str]:
    return [line.split("  #")[0].strip() for _, body in _code_blocks(page.read_text()) for line in body.splitlines()]


def _commands(page) -> list[str]:
    """Command lines, not the lines of a diagram (its arrows are ─>)."""
    return [line for line in _lines(page) if re.match(r"(\.venv/bin/)?nas ", line) and "─" not in line]


# Each test runs on the pages that have what it checks, and there are such pages.
YAML_PAGES = [p for p in PAGES if any(language == "yaml" for language, _ in _code_blocks(p.read_text()))]
COMMAND_PAGES = [p for p in [*PAGES, REPO / "README.md"] if _commands(p)]


@pytest.mark.parametrize("page", YAML_PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_config_examples_validate(page):
    for language, body in _code_blocks(page.read_text()):
        if language == "yaml":
            example = yaml.safe_load(body)
            config = {"name": "example", "audio": ["audio/"], **example}  # a fragment: one section of a config
            DatasetConfig.model_validate(config)


@pytest.mark.parametrize("page", COMMAND_PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_command_lines_parse(page):
    parser = build_parser()
    for line in _commands(page):
        try:
            parser.parse_args(shlex.split(line)[1:])
        except SystemExit:
            pytest.fail(f"{page.name}: `{line}` does not parse")


def test_the_pages_checked_are_the_ones_that_show_configs_and_commands():
    assert len(YAML_PAGES) >= 2 and len(COMMAND_PAGES) >= 5
    for needed in ("quickstart.md", "live.md", "README.md"):
        assert any(p.name == needed for p in COMMAND_PAGES), needed


def test_the_quickstart_gives_the_readme_s_two_commands():
    quickstart = DOCS / "quickstart.md"
    assert len(_commands(quickstart)) >= 2
    makefile = (REPO / "Makefile").read_text()
    made = [line for line in _lines(quickstart) if line.startswith("make ")]
    assert made == ["make demo", "make test"]
    readme = (REPO / "README.md").read_text()
    for line in made:
        assert re.search(rf"(?m)^{line.split()[1]}:", makefile) and f"    {line}\n" in readme, line


def test_the_benchmarks_page_has_a_section_with_results_for_each_script_and_nothing_else():
    """One section per script in benchmarks/ (its heading, its command, its results'
    marker); every results file in the schema and on the page; no section for a script that
    is gone."""
    page = (DOCS / "benchmarks.md").read_text()
    scripts = {p.name for p in (REPO / "benchmarks").glob("*.py")} - {"record.py"}
    sections = set(re.findall(r"(?m)^## `(\w+\.py)`$", page))
    assert sections == scripts
    for script in scripts:
        section = page.split(f"## `{script}`", 1)[1].split("\n## ", 1)[0]
        assert f"benchmarks/{script}" in section, script  # how to run it
        (name,) = benchmarks_page.markers(section)
        assert benchmarks_page.load(name)["benchmark"] == script
    on_page = set(benchmarks_page.markers(page))
    assert on_page == {p.stem for p in (REPO / "benchmarks" / "results").glob("*.json")}
    for name in on_page:
        document = benchmarks_page.load(name)
        assert document["tables"] and all(len(row) == len(t["columns"]) for t in document["tables"] for row in t["rows"])


def test_a_results_table_is_drawn_from_its_file(tmp_path, monkeypatch):
    """The schema's tables as markdown under the line that says when, where and how; a file
    outside the schema is refused by name."""
    import json

    monkeypatch.setattr(benchmarks_page, "RESULTS", tmp_path)
    document = {"schema": 1, "benchmark": "x.py", "command": "python benchmarks/x.py --fast", "measured": "2026-12-05",
                "machine": "a CPU, 2 of 2 cores", "data": {},
                "tables": [{"title": "t", "columns": ["rate", "x real time"], "rows": [[48000, 4.4321], [44100, None]]}]}
    (tmp_path / "x.json").write_text(json.dumps(document))
    drawn = benchmarks_page.render("before\n<!-- results x -->\nafter")
    assert drawn.splitlines() == [
        "before", "*Measured 2026-12-05 on a CPU, 2 of 2 cores, with `python benchmarks/x.py --fast` "
        "(`benchmarks/results/x.json`).*", "", "| rate | x real time |", "|---|---|", "| 48,000 | 4.432 |",
        "| 44,100 |  |", "", "after"]
    (tmp_path / "y.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="y.json: not in benchmarks/record.py's schema"):
        benchmarks_page.render("<!-- results y -->")


def test_a_script_s_results_become_tables_by_their_shape():
    from benchmarks.record import tables_of

    data = {"date": "2026-12-05", "threads": 1, "goal": {"fast": True},
            "rows": [{"rate": 48000, "x": 1.23456, "steady": {"rpa": 0.99}}],
            "median": {"a": {"wall_s": 1.0}, "b": {"wall_s": 2.0}}, "runs": {"a": [1.1, 0.9], "b": [2.0, 2.0]}}
    tables = {t["title"]: (t["columns"], t["rows"]) for t in tables_of(data)}
    assert tables == {"figures": (["figure", "value"], [["threads", 1], ["goal: fast", True]]),
                      "rows": (["rate", "x", "steady.rpa"], [[48000, 1.235, 0.99]]),
                      "median": (["case", "wall_s"], [["a", 1.0], ["b", 2.0]])}  # the repeats stay in `data`
