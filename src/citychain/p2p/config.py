"""The transport's configuration values: peer addresses and limits."""

from __future__ import annotations

from dataclasses import dataclass, fields

from citychain.errors import ConfigError, InvalidInput
from citychain.p2p.certs import check_node_name


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """A peer to dial: ``name@host:port`` (an IPv6 host goes in brackets: ``n1@[::1]:26656``)."""

    name: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> PeerAddress:
        """Parse ``name@host:port``; :class:`ConfigError` names the bad entry."""
        entry = text.strip()

        def bad(why: str) -> ConfigError:
            return ConfigError(f"peer {entry!r}: {why} (expected name@host:port)")

        name, at, hostport = entry.partition("@")
        if not at:
            raise bad("no '@' between the node name and the address")
        try:
            check_node_name(name)
        except InvalidInput as exc:
            raise bad(exc.message) from None
        host, colon, port_text = hostport.rpartition(":")
        if not colon or not host:
            raise bad("no host:port after '@'")
        if host.startswith("["):
            if not host.endswith("]") or len(host) < 3:
                raise bad("an IPv6 host must be written [address]")
            host = host[1:-1]
        elif ":" in host:
            raise bad("an IPv6 host must be written in brackets, e.g. [::1]:26656")
        if any(c.isspace() for c in host) or "@" in host:
            raise bad(f"bad host {host!r}")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise bad(f"port {port_text!r} is not a number from 1 to 65535")
        return cls(name, host, int(port_text))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.name}@{host}:{self.port}"


def parse_peer_list(text: str) -> list[PeerAddress]:
    """Parse a comma-separated peer list; an empty string (or only commas) gives ``[]``.

    The same node name twice is a :class:`ConfigError`.
    """
    peers = [PeerAddress.parse(item) for item in text.split(",") if item.strip()]
    seen: set[str] = set()
    for peer in peers:
        if peer.name in seen:
            raise ConfigError(f"peer {peer.name!r} is listed twice in the peer list")
        seen.add(peer.name)
    return peers


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-peer limits of the transport. All must be positive."""

    #: Largest payload accepted in one frame; a bigger frame ends the connection.
    max_message_bytes: int = 4 * 1024 * 1024
    #: Frames queued per peer; when full, ``send()`` returns False (counted as dropped).
    send_queue: int = 2048
    #: Token bucket per peer; a peer exceeding it is read more slowly (not disconnected).
    recv_bytes_per_s: int = 64 * 1024 * 1024
    recv_msgs_per_s: int = 50_000
    dial_backoff_min_ms: int = 200
    dial_backoff_max_ms: int = 5_000
    #: TLS handshake plus Hello exchange.
    handshake_timeout_ms: int = 5_000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"p2p limit {f.name} must be a positive integer, got {value!r}")
        if self.max_message_bytes >= 2**32:
            raise ConfigError("p2p limit max_message_bytes must be below 4 GiB (a 4-byte length)")
        if self.dial_backoff_max_ms < self.dial_backoff_min_ms:
            raise ConfigError("p2p limit dial_backoff_max_ms must be >= dial_backoff_min_ms")
