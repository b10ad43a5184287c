"""`nas register`: the config it writes, the errors it gives, and prefect.yaml kept in step
with dataset_configs/."""

import shutil
import subprocess
import sys

import pytest
import yaml

from flows.deployments import add_pipeline_deployment, pipeline_deployment
from nas.config import ConfigError, find_audio, load_config
from nas.registration import register_dataset
from tests.conftest import REPO


def test_register_writes_a_config_that_loads_and_finds_the_audio(small_sources, tmp_path):
    configs = tmp_path / "dataset_configs"
    path = register_dataset(small_sources / "audio", "cello", configs,
                            {"crepe.capacity": "tiny", "training.steps": 200,
                             "training.overrides.optim.learning_rate": 0.001})
    config, base = load_config(path)
    assert config.name == "cello" and config.crepe.capacity == "tiny" and config.crepe.viterbi
    assert config.training.steps == 200 and config.training.overrides == {"optim.learning_rate": 0.001}
    assert [p.name for p in find_audio(config, base)][:3] == ["a-mono-32k.flac", "b-stereo-44k-24bit.wav",
                                                              "c-vorbis.ogg"]
    with pytest.raises(ConfigError, match="exists"):
        register_dataset(small_sources / "audio", "cello", configs)


@pytest.mark.parametrize("name, settings, message", [
    ("Cello!", {}, "name: 'Cello!': use lower case letters, digits and . _ -"),
    ("cello", {"crepe.capacity": "huge"}, "crepe.capacity"),
    ("cello", {"colour": "blue"}, "colour: unknown key"),
    ("cello", {"frame_rate": 7}, "frame_rate 7 must divide 16000"),
])
def test_register_refuses_bad_settings_and_writes_nothing(small_sources, tmp_path, name, settings, message):
    with pytest.raises(ConfigError, match=message):
        register_dataset(small_sources / "audio", name, tmp_path, settings)
    assert list(tmp_path.iterdir()) == []


def test_register_refuses_a_folder_without_audio(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no audio here")
    with pytest.raises(ConfigError, match="matches no files"):
        register_dataset(tmp_path / "notes", "empty", tmp_path / "configs")
    with pytest.raises(ConfigError, match="not a folder"):
        register_dataset(tmp_path / "missing", "empty", tmp_path / "configs")
    assert not (tmp_path / "configs").exists()


def test_every_dataset_config_has_its_pipeline_deployment():
    """prefect.yaml's pipeline-<name> runs that config with its own training recipe."""
    deployments = {d["name"]: d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}
    configs = sorted((REPO / "dataset_configs").glob("*.yaml"))
    assert configs
    for path in configs:
        config, _ = load_config(path)
        entry = deployments[f"pipeline-{config.name}"]
        assert entry["entrypoint"] == "flows/pipeline.py:pipeline" and entry["work_pool"]["name"] == "nas-process"
        expected = yaml.safe_load(pipeline_deployment(config.name, str(path.relative_to(REPO))))[0]
        assert entry["parameters"] == expected["parameters"]
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(REPO)  # the config paths in prefect.yaml are relative to the repo
            assert load_config(entry["parameters"]["config_path"])[0] == config


def test_adding_a_deployment_keeps_prefect_yaml_valid_and_is_done_once(small_sources, tmp_path):
    prefect_yaml = tmp_path / "prefect.yaml"
    shutil.copy(REPO / "prefect.yaml", prefect_yaml)
    config = register_dataset(small_sources / "audio", "cello", tmp_path / "dataset_configs")
    assert add_pipeline_deployment(prefect_yaml, "cello", str(config))
    assert not add_pipeline_deployment(prefect_yaml, "cello", str(config))
    names = [d["name"] for d in yaml.safe_load(prefect_yaml.read_text())["deployments"]]
    assert names.count("pipeline-cello") == 1 and "pipeline-demo-violin" in names and "reevaluate" in names


def test_cli_register_without_a_server_says_how_to_run_it(small_sources, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path / "prefect")}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "register", str(small_sources / "audio"), "--name",
                           "viola", "--configs-dir", str(tmp_path / "configs"), "--prefect-yaml", ""],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no event sent" in done.stdout and f"nas run {tmp_path / 'configs' / 'viola.yaml'}" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "flows.cli", "register", str(tmp_path / "nowhere"), "--name", "x"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "not a folder of audio" in bad.stderr and "Traceback" not in bad.stderr


def test_register_creates_a_new_configs_folder_beside_the_audio(small_sources, tmp_path):
    """`--configs-dir NEW` where NEW does not exist yet: the audio is found through `../`."""
    project = tmp_path / "project"
    shutil.copytree(small_sources / "audio", project / "cello")
    path = register_dataset(project / "cello", "cello", project / "new-configs")
    config, base = load_config(path)
    assert config.audio == ["../cello"] and len(find_audio(config, base)) == 5


def test_register_a_bucket_folder(s3_endpoint, bucket, small_sources, tmp_path):
    import s3fs

    s3fs.S3FileSystem(skip_instance_cache=True).put(f"{small_sources / 'audio'}/", f"{bucket}/cello/", recursive=True)
    path = register_dataset(f"s3://{bucket}/cello", "cello", tmp_path / "configs")
    config, base = load_config(path)
    assert config.audio == [f"s3://{bucket}/cello"]
    assert [str(p) for p in find_audio(config, base)][:2] == [f"s3://{bucket}/cello/a-mono-32k.flac",
                                                              f"s3://{bucket}/cello/b-stereo-44k-24bit.wav"]
    with pytest.raises(ConfigError, match="not a folder"):
        register_dataset(f"s3://{bucket}/viola", "viola", tmp_path / "configs")
    assert sorted(p.name for p in (tmp_path / "configs").iterdir()) == ["cello.yaml"]
