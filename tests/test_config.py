import pytest

from nas.config import ConfigError, find_audio, load_config
from tests.conftest import REPO, write_config


def test_demo_config_is_valid():
    config, base = load_config(REPO / "dataset_configs" / "demo-violin.yaml")
    assert config.crepe.capacity == "full" and config.crepe.viterbi
    assert len(find_audio(config, base)) == 6


def test_unknown_key_and_wrong_type_name_the_key_and_file(tmp_path):
    path = write_config(tmp_path / "bad.yaml", sampel_rate=16000, frame_rate="fast")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message
    assert "sampel_rate: unknown key" in message
    assert "frame_rate:" in message


def test_nested_unknown_key(tmp_path):
    path = write_config(tmp_path / "bad.yaml", crepe={"capacity": "huge"})
    with pytest.raises(ConfigError, match="crepe.capacity"):
        load_config(path)


def test_frame_rate_must_divide_crepe_rate(tmp_path):
    with pytest.raises(ConfigError, match="must divide 16000"):
        load_config(write_config(tmp_path / "bad.yaml", frame_rate=300))


def test_glob_matching_nothing_is_an_error(tmp_path):
    config, base = load_config(write_config(tmp_path / "c.yaml", audio=["nowhere/*.wav"]))
    with pytest.raises(ConfigError, match="nowhere"):
        find_audio(config, base)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    (tmp_path / "broken.yaml").write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "broken.yaml")


def test_version_ignores_where_the_audio_is(tmp_path):
    a, _ = load_config(write_config(tmp_path / "a.yaml", audio=["x/*.wav"]))
    b, _ = load_config(write_config(tmp_path / "b.yaml", audio=["/elsewhere/*.flac"]))
    c, _ = load_config(write_config(tmp_path / "c.yaml", hop_secs=1.0))
    assert a.parameters() == b.parameters() != c.parameters()
