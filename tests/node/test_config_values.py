"""node.toml settings the node takes, and bad values refused by name:

* ``[p2p] private_ack_timeout_ms``: how long a private-collection write waits for its
  ``required_peers`` acknowledgements;
* ``[state] max_open_files``: the table files the node's database keeps open; the node opens
  its database with it and keeps that many descriptors (and its private store's) from API
  clients;
* ``[state] tree_blob_files``: the tree's pages in RocksDB's blob files (its column family
  only);
* ``[state] query_cache_mib``: the memory for answers of queries given again until the next
  block (0: none), and the node's metrics of it;
* ``[state] value_cache_mib``: the memory for latest state values kept from the database;
* ``[state] block_cache_mib``: RocksDB's block cache, which the node opens its database with."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest

from citychain.api import limits
from citychain.crypto import ED25519, Signer
from citychain.errors import ConfigError
from citychain.node import Node, NodeConfig
from citychain.node.config import ApiConfig
from citychain.node.private_data import PRIVATE_MAX_OPEN_FILES
from citychain.store.kv import DEFAULT_MAX_OPEN_FILES
from citychain.types import Validator
from citychain.types.genesis import Genesis


def write(home: Path, text: str) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "node.toml").write_text(text)


def node_of(home: Path, toml: str) -> Node:
    """A single-validator node of a home whose node.toml is ``toml``."""
    write(home, toml)
    val = Signer(ED25519, b"\x01" * 32)
    Genesis("svc", 1, "ed25519", (Validator(val.public_key, 1, "v"),)).save(
        home / "config" / "genesis.json"
    )
    return Node(NodeConfig.load(home), signer=val)


def test_the_default_is_5_s_and_the_node_waits_what_the_file_says(tmp_path: Path) -> None:
    write(tmp_path / "a", "[p2p]\n")
    assert NodeConfig.load(tmp_path / "a").p2p.private_ack_timeout_ms == 5_000
    node = node_of(tmp_path / "b", "[p2p]\nprivate_ack_timeout_ms = 12500\n")
    try:
        assert node.private.ack_timeout == 12.5
    finally:
        node.close()


#: A number's range is said whatever was wrong with it: its type, its sign or its size.
@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("0", "[p2p] private_ack_timeout_ms must be a whole number, 1 to 60,000 (a write waits"),
        (
            "60001",
            "[p2p] private_ack_timeout_ms must be a whole number, 1 to 60,000 (a write waits",
        ),
        ("-5", "[p2p] private_ack_timeout_ms must be a whole number, 1 to 60,000 (a write waits"),
        ('"5s"', "[p2p] private_ack_timeout_ms must be a whole number, 1 to 60,000 (a write waits"),
        ("15", "[state] max_open_files must be a whole number, 16 or more (RocksDB's own files"),
        ("-1", "[state] max_open_files must be a whole number, 16 or more (RocksDB's own files"),
        ('"yes"', "[state] tree_blob_files must be true or false"),
        ('"lots"', "[state] query_cache_mib must be a whole number, 0 or more"),
        ("-64", "[state] query_cache_mib must be a whole number, 0 or more"),
        ('"big"', "[state] value_cache_mib must be a whole number, 0 or more"),
        ("-1", "[state] value_cache_mib must be a whole number, 0 or more"),
        ("4", "[state] block_cache_mib must be a whole number, 8 or more, got 4"),
        ('"1G"', "[state] block_cache_mib must be a whole number, 8 or more, got '1G'"),
        ("4.5", "[state] block_cache_mib must be a whole number, 8 or more, got 4.5"),
        ("0", "[mempool] max_txs must be a whole number, 1 or more, got 0"),
        ("0", "[mempool] nonce_window must be a whole number, 1 or more, got 0"),
    ],
)
def test_bad_values_are_refused_by_name(tmp_path: Path, value: str, words: str) -> None:
    section, key = words.split()[:2]
    write(tmp_path, f"{section}\n{key} = {value}\n")
    with pytest.raises(ConfigError) as refused:
        NodeConfig.load(tmp_path)
    assert words in refused.value.message and "node.toml" in refused.value.message


def state_node(tmp_path: Path, key: str, default: int, value: int) -> Node:
    """A node whose node.toml sets ``[state] key = value``, once a file without it was seen
    to give ``default``."""
    write(tmp_path / "a", "[state]\n")
    assert getattr(NodeConfig.load(tmp_path / "a").state, key) == default
    return node_of(tmp_path / "b", f"[state]\n{key} = {value}\n")


def test_the_node_opens_its_database_with_the_block_cache_asked_for(tmp_path: Path) -> None:
    node = state_node(tmp_path, "block_cache_mib", 256, 1024)
    try:
        assert node.chain.kv.block_cache_capacity() == 1024 * 1024 * 1024
    finally:
        node.close()


def test_the_node_keeps_its_databases_files_from_api_clients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "a", "[state]\n")
    assert NodeConfig.load(tmp_path / "a").state.max_open_files == DEFAULT_MAX_OPEN_FILES == 512
    node = node_of(tmp_path / "b", "[state]\nmax_open_files = 100\n")
    try:
        # The database was opened with the bound: RocksDB wrote it into its OPTIONS file.
        options = sorted(node.config.data_dir.glob("OPTIONS-*"))[-1].read_text()
        assert "max_open_files=100\n" in options
        assert node.database_files == 100 + PRIVATE_MAX_OPEN_FILES
        monkeypatch.setattr(limits.resource, "getrlimit", lambda _which: (4096, 4096))
        monkeypatch.setattr(limits, "_open_descriptors", lambda: 50)
        cap, words = limits.descriptor_budget(
            ApiConfig(max_connections=10_000, fd_reserve=128), db_files=node.database_files
        )
        assert cap == 4096 - 50 - 128 - 116
        assert "128 reserved for the node and 116 for its databases' files" in words
        with pytest.raises(ConfigError) as refused:
            limits.descriptor_budget(ApiConfig(fd_reserve=3_950), db_files=node.database_files)
        assert "and 116 for the databases' files" in refused.value.message
        assert "lower [state] max_open_files or [api] fd_reserve" in refused.value.message
    finally:
        node.close()


def _cf_options(options: str) -> dict[str, str]:
    """The ``[CFOptions "name"]`` sections of a RocksDB OPTIONS file, by column family."""
    return {part.split('"', 1)[0]: part for part in options.split('[CFOptions "')[1:]}


def test_tree_blob_files_reach_the_trees_column_family_only(tmp_path: Path) -> None:
    write(tmp_path / "a", "[state]\n")
    assert NodeConfig.load(tmp_path / "a").state.tree_blob_files is False
    for home, toml, on in (
        (tmp_path / "b", "[state]\ntree_blob_files = true\n", True),
        (tmp_path / "c", "[state]\n", False),
    ):
        node = node_of(home, toml)
        try:
            options = sorted(node.config.data_dir.glob("OPTIONS-*"))[-1].read_text()
            cfs = _cf_options(options)
            assert f"enable_blob_files={str(on).lower()}\n" in cfs["state_nodes"]
            assert "enable_blob_files=false\n" in cfs["state_latest"]
            assert "enable_blob_files=false\n" in cfs["blocks"]
        finally:
            node.close()


def test_query_answers_are_kept_in_the_memory_the_file_gives(tmp_path: Path) -> None:
    node = state_node(tmp_path, "query_cache_mib", 64, 2)
    try:
        assert node.chain.queries.max_bytes == 2 * 1024 * 1024
        for _ in range(3):
            assert node.query("gov", "config", {}) == node.query("gov", "config", {})
        metrics = generate_latest(node.metrics_registry).decode()
        assert 'citychain_query_answers_total{cache="hit"} 5.0' in metrics
        assert 'citychain_query_answers_total{cache="miss"} 1.0' in metrics
        assert "citychain_query_cache_bytes " in metrics
    finally:
        node.close()
    node = node_of(tmp_path / "c", "[state]\nquery_cache_mib = 0\n")
    try:
        node.query("gov", "config", {})
        node.query("gov", "config", {})
        assert len(node.chain.queries) == 0 and node.chain.queries.hits == 0
    finally:
        node.close()


def test_latest_values_are_kept_in_the_memory_the_file_gives(tmp_path: Path) -> None:
    write(tmp_path / "a", "[state]\n")
    assert NodeConfig.load(tmp_path / "a").state.value_cache_mib == 64
    for home, toml, kept in (
        (tmp_path / "b", "[state]\nvalue_cache_mib = 0\n", False),
        (tmp_path / "c", "[state]\nvalue_cache_mib = 1\n", True),
    ):
        node = node_of(home, toml)
        try:
            values = node.chain.state._values
            assert values._max == (1024 * 1024 if kept else 0)
            assert node.chain.state.get(b"some key") is None
            assert (b"some key" in values._values) is kept
        finally:
            node.close()
