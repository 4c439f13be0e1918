"""Node configuration: ``<home>/config/node.toml``.

A node's home directory::

    <home>/config/node.toml       this file (operator settings, not consensus)
    <home>/config/genesis.json    the chain's genesis document
    <home>/config/node_key.json   the validator key, encrypted (see citychain.crypto.keystore)
    <home>/config/passphrase      TEST NETWORKS ONLY: the key's passphrase in plain text
                                  (mode 0600), allowed by [keys] allow_plaintext_passphrase;
                                  see citychain.crypto.passphrase for the real sources
    <home>/data/                  RocksDB
    <home>/data/blobs/            the off-chain blob store ([blobs], citychain.blobs)

Unknown sections or keys are refused with the file and key named, so a typo never passes
silently.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from citychain.crypto.passphrase import TEST_NETWORK_PHRASE
from citychain.errors import ConfigError
from citychain.state import DEFAULT_CACHE_PAGES
from citychain.store.kv import DEFAULT_BLOCK_CACHE_MIB, DEFAULT_MAX_OPEN_FILES, MIN_DB_OPEN_FILES

if TYPE_CHECKING:
    from citychain.blobs import BlobStore


@dataclass(frozen=True, slots=True)
class _Whole:
    """The whole numbers from ``low`` to ``high`` (None: no upper bound) a setting takes, and
    ``why`` the bounds are what they are (said after them when a value is refused)."""

    low: int = 0
    high: int | None = None
    why: str = ""

    def holds(self, v: object) -> bool:
        return (
            isinstance(v, int)
            and not isinstance(v, bool)
            and self.low <= v
            and (self.high is None or v <= self.high)
        )

    def words(self) -> str:
        """``a whole number, 8 or more``."""
        span = f"{self.low:,} or more" if self.high is None else f"{self.low:,} to {self.high:,}"
        return f"a whole number, {span}" + (f" ({self.why})" if self.why else "")


#: What an int setting that declares no range takes.
_ANY_WHOLE = _Whole()


def _whole(default: int, low: int = 0, high: int | None = None, why: str = "") -> int:
    """A whole-number setting from ``low`` to ``high``. The range is declared here, once,
    and checked with the type when node.toml is read (:func:`_section`), so a value of the
    wrong type is told the same range as one out of it."""
    setting: int = field(default=default, metadata={"range": _Whole(low, high, why)})
    return setting


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """Where the API listens and what any client may hold (see :mod:`citychain.api.limits`)."""

    host: str = "127.0.0.1"
    port: int = _whole(26657, 0, 65535)
    max_body_bytes: int = _whole(32 * 1024 * 1024, 1)
    #: Open client connections in all (WebSockets included); lowered at start so that the
    #: open-files limit keeps ``fd_reserve`` descriptors for consensus, storage and p2p.
    max_connections: int = _whole(1024, 1)
    #: Open connections from one client address.
    max_connections_per_address: int = _whole(128, 1)
    #: Descriptors never given to API clients: the WAL, the mempool journal, p2p (and, on
    #: top, the databases' table files: ``[state] max_open_files``).
    fd_reserve: int = 128
    #: A request's line and headers must arrive within this (slow senders are dropped).
    header_timeout_ms: int = _whole(5_000, 1)
    #: A request's body must arrive within this once its headers did.
    body_timeout_ms: int = _whole(60_000, 1)
    #: An idle keep-alive connection is closed after this.
    keepalive_timeout_ms: int = _whole(5_000, 1)
    #: Longest request target (path and query) and most header bytes in one request.
    max_url_bytes: int = _whole(8_000, 256, 8_000, "a WebSocket handshake takes no longer line")
    max_header_bytes: int = _whole(32 * 1024, 1024)
    #: Open ``/v1/events`` subscriptions, in all and from one client address.
    max_subscribers: int = _whole(1_000, 1)
    max_subscribers_per_address: int = _whole(100, 1)
    #: The public ``scheme://host[:port]`` clients address when a reverse proxy sits in front:
    #: signed reads check a request's signed URI against it (empty: the connection's scheme
    #: and the ``Host`` header as received). See :mod:`citychain.api._httpsig`.
    public_origin: str = ""
    #: Addresses or networks of the reverse proxies whose ``X-Forwarded-For`` and
    #: ``X-Forwarded-Proto`` are believed, comma-separated (empty: nobody's; the connection's
    #: own address and scheme are used).
    trusted_proxies: str = ""

    def proxies(self) -> tuple[str, ...]:
        """``trusted_proxies`` as a list, each an IP address or network."""
        return tuple(p.strip() for p in self.trusted_proxies.split(",") if p.strip())

    def problem(self) -> str | None:
        """Why these settings cannot work (None when they can), beyond each number's range
        (declared with the field, checked as node.toml is read)."""
        scheme, sep, authority = self.public_origin.partition("://")
        if self.public_origin and (
            scheme not in ("http", "https") or not sep or not authority or "/" in authority
        ):
            return "public_origin must be http(s)://host[:port], without a path"
        for proxy in self.proxies():
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                return (
                    f"trusted_proxies: {proxy[:60]!r} is no IP address or network "
                    "(e.g. 127.0.0.1, 10.0.0.0/8)"
                )
        return None


@dataclass(frozen=True, slots=True)
class MempoolSettings:
    max_txs: int = _whole(200_000, 1)
    max_bytes: int = _whole(256 * 1024 * 1024, 1)
    nonce_window: int = _whole(1024, 1)
    #: Journal accepted transactions (fsynced before the 202), so they survive a crash.
    persist: bool = True


@dataclass(frozen=True, slots=True)
class StateSettings:
    #: Versions of state kept for proofs at past heights; 0 keeps every version.
    retain_versions: int = 10_000
    #: Pages of the state tree kept in memory (about 2 KiB each). A block's commit reads
    #: the page above every key it writes; with the whole tree cached it reads none from
    #: disk. The tree has about one page per 16 keys (an account is two: balance, nonce),
    #: so 10 million accounts want ~1.25 million pages (~3 GiB). The node's metric
    #: ``citychain_state_page_reads_total`` rising under load says the cache is too small.
    cache_pages: int = DEFAULT_CACHE_PAGES
    #: RocksDB table files the node's database keeps open (RocksDB would keep every one).
    #: They are kept from API clients besides ``[api] fd_reserve``: see ``descriptor_budget``.
    max_open_files: int = _whole(
        DEFAULT_MAX_OPEN_FILES,
        MIN_DB_OPEN_FILES,
        why="RocksDB's own files: its log, manifest and a compaction's inputs and outputs",
    )
    #: Keep the tree's pages in RocksDB's blob files: its compactions then move pointers, not
    #: pages (at 10 million accounts RocksDB's CPU a block 0.58 -> 0.35 s in bench_scale.py),
    #: and the tree takes more disk (the pruned pages' garbage stays longer: ~40 % measured).
    #: Can be turned on or off on an existing database (what is written next follows it).
    tree_blob_files: bool = False
    #: Memory for answers of queries (DID resolutions, status lists, registry reads) given
    #: again to the same question until the next block; 0 turns the cache off.
    query_cache_mib: int = 64
    #: Memory for the latest values of state keys read by transactions (nonces, balances),
    #: kept so that admission and execution seldom read the database; 0 turns it off.
    value_cache_mib: int = 64
    #: RocksDB's block cache: the database's blocks (its index, the latest values, the tree's
    #: pages beyond ``cache_pages``) kept in memory, uncompressed. A read that misses it reads
    #: the block from the file (the OS page cache at best), checks and decompresses it.
    block_cache_mib: int = _whole(DEFAULT_BLOCK_CACHE_MIB, 8)


#: The longest a private-collection write may wait for acknowledgements (one minute).
MAX_PRIVATE_ACK_TIMEOUT_MS = 60_000


@dataclass(frozen=True, slots=True)
class P2PSettings:
    """Node-to-node transport. Empty ``persistent_peers`` and no organisations in genesis
    means a single-validator chain with no p2p at all."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 26656
    #: Comma-separated ``name@host:port`` of the peers to keep connected to.
    persistent_peers: str = ""
    #: This node's organisation (its certificate's O) and its certificate and TLS key
    #: (the key encrypted with the node passphrase).
    org_id: str = ""
    #: Only for a node whose organisation is waiting to be admitted by governance: its
    #: organisation's CA certificate, trusted until the chain lists the organisation.
    ca_cert_file: str = ""
    cert_file: str = "config/node_cert.pem"
    tls_key_file: str = "config/node_tls_key.pem"
    #: On an ``sm2-sm3`` chain: this node's SM2 certificate, issued by its organisation's SM2
    #: CA for its node key; peers authenticate the node by it (:mod:`citychain.p2p.nodekey`).
    gm_cert_file: str = "config/node_gm_cert.pem"
    #: Like ``ca_cert_file``, for an organisation waiting to be admitted: its SM2 CA.
    gm_ca_cert_file: str = ""
    #: Largest frame a peer may send: a block-sync answer carries a whole block
    #: (ChainParams.block_max_bytes, 16 MiB by default) and its commit.
    max_message_bytes: int = 24 * 1024 * 1024
    send_queue: int = 4096
    recv_bytes_per_s: int = 64 * 1024 * 1024
    recv_msgs_per_s: int = 50_000
    #: How long a private-collection write waits for the ``required_peers`` acknowledgements
    #: of its collection before answering ``dissemination_failed`` (citychain.node.private_data).
    #: Peers in other cities answer a push after a round trip and a synced write.
    private_ack_timeout_ms: int = _whole(
        5_000,
        1,
        MAX_PRIVATE_ACK_TIMEOUT_MS,
        "a write waits this long for acknowledgements, holding its API request open",
    )


@dataclass(frozen=True, slots=True)
class ConsensusSettings:
    #: The signer's last signed height/round/step (double-sign protection across restarts).
    privval_state_file: str = "data/privval_state.json"
    wal_dir: str = "data/wal"
    #: Blocks requested ahead of the local height while catching up.
    sync_window: int = 32
    #: Empty blocks while the chain is idle (no transaction or evidence waiting): with
    #: ``true``, one per ``empty_blocks_interval_ms`` (0: one every block interval, never
    #: waiting for transactions); with ``false``, none. A transaction always starts a block
    #: at once. See :mod:`citychain.consensus.tendermint` ("Idle heights").
    create_empty_blocks: bool = True
    empty_blocks_interval_ms: int = 10_000


@dataclass(frozen=True, slots=True)
class NodeSettings:
    name: str = "node0"
    key_file: str = "config/node_key.json"
    passphrase_file: str = "config/passphrase"  # noqa: S105 (a path, not a secret)
    #: Dev only: accept a plaintext validator key (a warning is logged at every start).
    allow_plaintext_key: bool = False
    log_level: str = "info"
    #: The event loop the node runs on: ``"uvloop"`` (libuv's, in C: up to a third less CPU an
    #: API request, none where RocksDB reads dominate; bench/RESULTS.md), ``"asyncio"`` or
    #: ``"auto"`` (uvloop where it is installed, which ``citychain[node]`` does on Linux
    #: and macOS). See :func:`citychain.api.server.event_loop`.
    event_loop: str = "auto"

    def problem(self) -> str | None:
        """Why these settings cannot work (None when they can)."""
        if self.event_loop not in ("auto", "uvloop", "asyncio"):
            return f"event_loop must be auto, uvloop or asyncio, got {self.event_loop!r}"
        return None


@dataclass(frozen=True, slots=True)
class KeysSettings:
    """Where the validator key is and what may unlock it (README: Keys)."""

    #: ``"file"``: the encrypted key file [node] key_file; ``"pkcs11"``: a key that never
    #: leaves a hardware security module (the pkcs11_* settings below).
    signer: str = "file"
    #: Only the words "this is a test network" let the node read its passphrase from the
    #: plaintext [node] passphrase_file beside the key; anything else refuses such a file.
    allow_plaintext_passphrase: str = ""
    #: The PKCS#11 module (a shared library) and where the key is in it.
    pkcs11_module: str = ""
    pkcs11_token_label: str = ""
    pkcs11_key_label: str = ""
    #: The environment variable holding the token's user PIN (else the systemd credential
    #: citychain-pkcs11-pin); the PIN is never written in this file.
    pkcs11_pin_env: str = "CITYCHAIN_PKCS11_PIN"

    def problem(self) -> str | None:
        """Why these settings cannot work (None when they can)."""
        if self.signer not in ("file", "pkcs11"):
            return f'signer must be "file" or "pkcs11", got {self.signer!r}'
        if self.allow_plaintext_passphrase not in ("", TEST_NETWORK_PHRASE):
            return (
                f'allow_plaintext_passphrase must be "{TEST_NETWORK_PHRASE}" (on a test '
                "network only) or left out"
            )
        if self.signer == "pkcs11":
            for name in ("pkcs11_module", "pkcs11_token_label", "pkcs11_key_label"):
                if not getattr(self, name):
                    return f'{name} must be set when signer = "pkcs11"'
        if not self.pkcs11_pin_env:
            return "pkcs11_pin_env must name an environment variable"
        return None

    @property
    def test_network(self) -> bool:
        """Whether node.toml says, in words, that this is a test network."""
        return self.allow_plaintext_passphrase == TEST_NETWORK_PHRASE


@dataclass(frozen=True, slots=True)
class BlobsSettings:
    """The off-chain blob store (:mod:`citychain.blobs`): a local directory by default, or
    any S3-compatible object store. Settings another backend does not use are left out."""

    #: ``"local"`` (a directory under the home) or ``"s3"``.
    backend: str = "local"
    #: local: the directory (relative to the home) and a quota in bytes (0: the disk's size).
    path: str = "data/blobs"
    capacity: int = 0
    #: s3: the bucket, the endpoint URL (empty: AWS), the region and a key prefix.
    bucket: str = ""
    endpoint: str = ""
    region: str = "us-east-1"
    prefix: str = ""
    #: s3: the access key id and the environment variable holding its secret (never written
    #: here); both empty: boto3's credential chain (environment, profile, instance role).
    access_key: str = ""
    secret_key_env: str = ""

    def store_config(self) -> dict[str, Any]:
        """The table :func:`citychain.blobs.open_store` takes."""
        if self.backend != "s3":
            return {"backend": self.backend, "path": self.path, "capacity": self.capacity}
        keys = ("bucket", "endpoint", "region", "prefix", "access_key", "secret_key_env")
        return {"backend": "s3", **{k: getattr(self, k) for k in keys}}

    def problem(self) -> str | None:
        """Why these settings cannot work (None when they can)."""
        from citychain.blobs import config_problem

        if self.backend == "s3" and (self.path != "data/blobs" or self.capacity):
            return 'path and capacity are settings of backend = "local"'
        return config_problem(self.store_config())


@dataclass(frozen=True, slots=True)
class NodeConfig:
    home: Path
    node: NodeSettings = field(default_factory=NodeSettings)
    api: ApiConfig = field(default_factory=ApiConfig)
    mempool: MempoolSettings = field(default_factory=MempoolSettings)
    state: StateSettings = field(default_factory=StateSettings)
    p2p: P2PSettings = field(default_factory=P2PSettings)
    consensus: ConsensusSettings = field(default_factory=ConsensusSettings)
    keys: KeysSettings = field(default_factory=KeysSettings)
    blobs: BlobsSettings = field(default_factory=BlobsSettings)

    @property
    def config_dir(self) -> Path:
        return self.home / "config"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def genesis_file(self) -> Path:
        return self.config_dir / "genesis.json"

    @property
    def config_file(self) -> Path:
        return self.config_dir / "node.toml"

    def path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.home / p

    def open_blob_store(self, hash_name: str = "sha256") -> BlobStore:
        """The blob store [blobs] describes; ``hash_name`` is the chain suite's hash."""
        from citychain.blobs import open_store

        return open_store(self.blobs.store_config(), base=self.home, hash_name=hash_name)

    @classmethod
    def load(cls, home: Path) -> NodeConfig:
        path = home / "config" / "node.toml"
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"{path}: no node config; run `citychain init --home {home}` first"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except RecursionError:  # tomllib recurses on nested arrays and inline tables
            raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text: {exc.reason}") from None
        sections: dict[str, type[Any]] = {
            "node": NodeSettings,
            "api": ApiConfig,
            "mempool": MempoolSettings,
            "state": StateSettings,
            "p2p": P2PSettings,
            "consensus": ConsensusSettings,
            "keys": KeysSettings,
            "blobs": BlobsSettings,
        }
        built: dict[str, Any] = {}
        for name, value in raw.items():
            if name not in sections:
                raise ConfigError(f"{path}: unknown section [{name}] (known: {sorted(sections)})")
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: [{name}] must be a table")
            built[name] = _section(path, name, sections[name], value)
        return cls(home=home, **built)

    def save(self) -> None:
        lines: list[str] = ["# citychain node configuration (see README: Configuration)"]
        for name in ("node", "api", "mempool", "state", "p2p", "consensus", "keys", "blobs"):
            section = getattr(self, name)
            lines.append(f"\n[{name}]")
            for f in fields(section):
                lines.append(f"{f.name} = {_toml_value(getattr(section, f.name))}")
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text("\n".join(lines) + "\n")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _section(path: Path, name: str, cls: type[Any], value: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    for key, v in value.items():
        if key not in known:
            raise ConfigError(f"{path}: unknown key {key!r} in [{name}] (known: {sorted(known)})")
        f = known[key]
        if f.type == "int":
            whole: _Whole = f.metadata.get("range", _ANY_WHOLE)
            ok, kind = whole.holds(v), whole.words()
        elif f.type == "bool":
            ok, kind = isinstance(v, bool), "true or false"
        else:
            ok, kind = f.type == "str" and isinstance(v, str), "a text in quotes"
        if not ok:
            raise ConfigError(f"{path}: [{name}] {key} must be {kind}, got {v!r}")
    built = cls(**value)
    problem = getattr(built, "problem", None)
    why = problem() if problem is not None else None
    if why is not None:
        raise ConfigError(f"{path}: [{name}] {why}")
    return built
