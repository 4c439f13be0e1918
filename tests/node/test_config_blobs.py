"""The node's ``[blobs]`` section: a local store under the home by default, S3 by
configuration, and a refusal naming the file and the key for anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from citychain.blobs import LocalStore
from citychain.errors import ConfigError, ErrorCode
from citychain.node.config import BlobsSettings, NodeConfig


def _write(home: Path, text: str) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "node.toml").write_text(text)


def test_the_default_is_a_local_store_under_the_data_dir(tmp_path: Path) -> None:
    _write(tmp_path, "")
    config = NodeConfig.load(tmp_path)
    assert config.blobs == BlobsSettings()
    store = config.open_blob_store()
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "data" / "blobs" and store.capacity_bytes is None


def test_a_saved_config_loads_back_with_its_blobs_section(tmp_path: Path) -> None:
    NodeConfig(home=tmp_path).save()
    text = (tmp_path / "config" / "node.toml").read_text()
    assert '[blobs]\nbackend = "local"\npath = "data/blobs"\ncapacity = 0\n' in text
    assert NodeConfig.load(tmp_path).blobs == BlobsSettings()


def test_local_capacity_and_s3_settings_are_read(tmp_path: Path) -> None:
    _write(tmp_path, '[blobs]\npath = "/srv/blobs"\ncapacity = 1000000\n')
    assert NodeConfig.load(tmp_path).blobs.store_config() == {
        "backend": "local",
        "path": "/srv/blobs",
        "capacity": 1000000,
    }
    _write(
        tmp_path,
        '[blobs]\nbackend = "s3"\nbucket = "city-data"\nendpoint = "http://10.0.0.5:9000"\n'
        'access_key = "node1"\nsecret_key_env = "CITY_S3_SECRET"\nprefix = "node1/"\n',
    )
    blobs = NodeConfig.load(tmp_path).blobs
    assert blobs.store_config() == {
        "backend": "s3",
        "bucket": "city-data",
        "endpoint": "http://10.0.0.5:9000",
        "region": "us-east-1",
        "prefix": "node1/",
        "access_key": "node1",
        "secret_key_env": "CITY_S3_SECRET",
    }


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ('backend = "ftp"', 'backend must be "local" or "s3", got \'ftp\''),
        ('backend = "s3"', "bucket must be set for the s3 backend"),
        ('backend = "s3"\nbucket = "b"\ncapacity = 5', "path and capacity are settings of"),
        ('backend = "s3"\nbucket = "b"\nendpoint = "ftp://x"', "endpoint must be an http://"),
        ('backend = "s3"\nbucket = "b"\naccess_key = "k"', "give access_key with secret_key"),
        ("capacity = -1", "capacity must be a whole number, 0 or more"),
        ('secret_key = "s"', "unknown key 'secret_key' in [blobs]"),
    ],
)
def test_bad_blobs_settings_are_refused_naming_the_key(
    tmp_path: Path, toml: str, words: str
) -> None:
    _write(tmp_path, f"[blobs]\n{toml}\n")
    with pytest.raises(ConfigError) as refused:
        NodeConfig.load(tmp_path)
    assert refused.value.code is ErrorCode.BAD_CONFIG
    assert words in refused.value.message
    assert str(tmp_path / "config" / "node.toml") in refused.value.message
