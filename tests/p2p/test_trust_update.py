"""Trusted CAs that change at runtime (governance), over real TLS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from p2p_net import (
    PASSPHRASE,
    Inbox,
    Pki,
    addr,
    eventually,
    free_ports,
    lines,
    make_switch,
    run,
    stop_all,
)

from citychain.errors import ConfigError
from citychain.p2p import switch as switch_module
from citychain.p2p.certs import generate_org_ca
from citychain.p2p.handshake import Established, accept
from citychain.p2p.switch import Switch

ALL = ("water", "roads", "parks")


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="citychain.p2p")


def _said(caplog: pytest.LogCaptureFixture, node: str, *words: str, level: int) -> bool:
    return any(all(w in m for w in words) for m in lines(caplog, node, level))


def _count(caplog: pytest.LogCaptureFixture, node: str, *words: str) -> int:
    return sum(all(w in m for w in words) for m in lines(caplog, node))


def test_admitted_organisation_can_dial_in(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    """(a) hub refuses the parks node until its CA is added; then it connects, frames flow."""
    (hub_port,) = free_ports(1)
    hub = make_switch(pki, "hub", "water", port=hub_port)  # trusts water and roads
    newbie = make_switch(
        pki, "p", "parks", peers=[addr("hub", hub_port)], cas=pki.genesis_cas(*ALL)
    )
    hub_inbox = Inbox().attach(hub, 7)
    p_inbox = Inbox().attach(newbie, 7)

    async def main() -> None:
        try:
            await hub.start()
            await newbie.start()
            await eventually(
                lambda: (
                    _said(
                        caplog,
                        "hub",
                        "refused peer at 127.0.0.1:",
                        "wrong CA",
                        level=logging.WARNING,
                    )
                    and _said(caplog, "p", "does not trust our CA", level=logging.WARNING)
                ),
                what="the parks node refused",
            )
            assert hub.connected() == [] and newbie.connected() == []

            hub.set_trusted_cas(pki.genesis_cas(*ALL))
            await eventually(
                lambda: hub.connected() == ["p"] and newbie.connected() == ["hub"],
                what="connected after the CA was added",
            )
            assert hub.send("p", 7, b"welcome")
            assert newbie.send("hub", 7, b"thanks")
            await eventually(
                lambda: (
                    hub_inbox.got == [("p", 7, b"thanks")]
                    and p_inbox.got == [("hub", 7, b"welcome")]
                ),
                what="frames both ways",
            )
        finally:
            await stop_all(hub, newbie)

    run(main())
    assert _said(
        caplog,
        "hub",
        "trusted organisation CAs changed: admitted 'parks'; now trusting 'parks', 'roads', "
        "'water'",
        level=logging.INFO,
    )


def test_admitted_organisation_can_be_dialled(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    """(a) the same from the dialling side: hub's own check refuses, then accepts."""
    (p_port,) = free_ports(1)
    hub = make_switch(pki, "hub", "water", peers=[addr("p", p_port)])
    newbie = make_switch(pki, "p", "parks", port=p_port, cas=pki.genesis_cas(*ALL))

    async def main() -> None:
        try:
            await hub.start()
            await newbie.start()
            await eventually(
                lambda: _said(
                    caplog,
                    "hub",
                    "refused peer p at",
                    "the certificate of p does not chain",
                    level=logging.WARNING,
                ),
                what="hub refused p",
            )
            hub.set_trusted_cas(pki.genesis_cas(*ALL))
            await eventually(lambda: hub.connected() == ["p"], what="hub dialled p")
        finally:
            await stop_all(hub, newbie)

    run(main())


def _trio(pki: Pki) -> tuple[Switch, Switch, Switch]:
    """hub (water) dials r (roads) and p (parks); p dials hub too. Everyone trusts all three."""
    hub_port, r_port, p_port = free_ports(3)
    cas = pki.genesis_cas(*ALL)
    hub = make_switch(
        pki, "hub", "water", port=hub_port, cas=cas, peers=[addr("r", r_port), addr("p", p_port)]
    )
    r = make_switch(pki, "r", "roads", port=r_port, cas=cas)
    p = make_switch(pki, "p", "parks", port=p_port, cas=cas, peers=[addr("hub", hub_port)])
    return hub, r, p


async def _start_connected(*switches: Switch) -> None:
    for sw in switches:
        await sw.start()
    hub = switches[0]
    await eventually(lambda: hub.connected() == ["p", "r"], what="hub connected to p and r")


def test_removed_organisation_is_disconnected_and_stays_out(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """(b) removing parks' CA closes p's connection with words naming parks; no way back in."""
    hub, r, p = _trio(pki)
    disconnected: list[tuple[str, str]] = []
    hub.on_peer_disconnected = lambda name, reason: disconnected.append((name, reason))
    hub_inbox = Inbox().attach(hub, 7)
    why = "the CA of organisation 'parks' is no longer trusted by this chain"

    async def main() -> None:
        try:
            await _start_connected(hub, r, p)
            hub.set_trusted_cas(pki.genesis_cas("water", "roads"))
            await eventually(
                lambda: hub.connected() == ["r"] and p.connected() == [],
                what="p disconnected",
            )
            assert r.connected() == ["hub"]
            # Both sides say why, in the same words.
            await eventually(
                lambda: (
                    _said(
                        caplog,
                        "hub",
                        "refused peer p at 127.0.0.1:",
                        "wrong CA",
                        why,
                        "removed by governance",
                        level=logging.WARNING,
                    )
                    and _said(
                        caplog,
                        "p",
                        "peer hub at",
                        "refused our certificate: wrong CA",
                        why,
                        level=logging.WARNING,
                    )
                ),
                what="the refusal logged on both sides",
            )
            # Reconnecting is refused both ways: p dialling hub (hub's OpenSSL) and hub
            # dialling p (hub's own check).
            inbound = _count(caplog, "hub", "refused peer at 127.0.0.1:", "does not chain")
            outbound = _count(caplog, "hub", "refused peer p at", "the certificate of p does not")
            await eventually(
                lambda: (
                    _count(caplog, "hub", "refused peer at 127.0.0.1:", "does not chain")
                    > inbound + 1
                    and _count(caplog, "hub", "refused peer p at", "the certificate of p does not")
                    > outbound + 1
                ),
                what="reconnects refused",
            )
            assert hub.connected() == ["r"] and p.connected() == []
            assert not p.send("hub", 7, b"let me in")
            assert r.send("hub", 7, b"still here")
            await eventually(lambda: hub_inbox.got == [("r", 7, b"still here")])
            infos = {i.name: i for i in hub.peers()}
            assert infos["p"].last_error == "refused: wrong CA"
            assert infos["r"].connected
            assert p.peers()[0].last_error == "refused by peer: wrong CA"
        finally:
            await stop_all(hub, r, p)

    run(main())
    assert len(disconnected) == 1
    assert disconnected[0][0] == "p" and why in disconnected[0][1]
    assert _said(
        caplog,
        "hub",
        "trusted organisation CAs changed: removed 'parks'; now trusting 'roads', 'water'",
        level=logging.INFO,
    )


def test_replaced_ca_disconnects_its_nodes(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    """(b) replacing roads' CA closes r's connection: r needs a certificate from the new CA."""
    hub, r, p = _trio(pki)
    new_roads_ca, _ = generate_org_ca("roads", "Organisation roads, new CA")

    async def main() -> None:
        try:
            await _start_connected(hub, r, p)
            hub.set_trusted_cas([*pki.genesis_cas("water", "parks"), new_roads_ca])
            await eventually(lambda: hub.connected() == ["p"], what="r disconnected")
            await eventually(
                lambda: _said(
                    caplog,
                    "r",
                    "peer hub at",
                    "refused our certificate: wrong CA",
                    "the CA of organisation 'roads' that issued the certificate of r is no "
                    "longer trusted by this chain (replaced by governance); r needs a "
                    "certificate from the organisation's new CA",
                    level=logging.WARNING,
                ),
                what="r told why",
            )
        finally:
            await stop_all(hub, r, p)

    run(main())
    assert _said(
        caplog,
        "hub",
        "trusted organisation CAs changed: replaced the CA of 'roads'",
        level=logging.INFO,
    )


def test_same_set_keeps_connections(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    """(c) the same CAs (in another order, repeated) change nothing."""
    hub, r, p = _trio(pki)
    r_inbox = Inbox().attach(r, 7)

    async def main() -> None:
        try:
            await _start_connected(hub, r, p)
            before = {i.name: i.since_ms for i in hub.peers()}
            contexts = (hub._server_ctx, hub._client_ctx)
            cas = pki.genesis_cas(*ALL)
            hub.set_trusted_cas([*reversed(cas), cas[0]])
            await asyncio.sleep(0.3)
            assert hub.connected() == ["p", "r"]
            assert {i.name: i.since_ms for i in hub.peers()} == before
            assert (hub._server_ctx, hub._client_ctx) == contexts
            assert hub.send("r", 7, b"still connected")
            await eventually(lambda: r_inbox.got == [("hub", 7, b"still connected")])
        finally:
            await stop_all(hub, r, p)

    run(main())
    assert not _said(caplog, "hub", "trusted organisation CAs changed", level=logging.DEBUG)
    assert not _said(caplog, "hub", "disconnected from peer", level=logging.DEBUG)


def test_own_organisation_removed_logs_an_error_and_keeps_running(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    hub, r, p = _trio(pki)

    async def main() -> None:
        try:
            await _start_connected(hub, r, p)
            hub.set_trusted_cas(pki.genesis_cas("roads", "parks"))
            await asyncio.sleep(0.2)
            assert hub.connected() == ["p", "r"]  # their CAs are still trusted
        finally:
            await stop_all(hub, r, p)

    run(main())
    assert _said(
        caplog,
        "hub",
        "our certificate (node hub of organisation water) does not chain to the organisation "
        "CAs this chain now trusts",
        "the CA of organisation 'water' is no longer trusted",
        "install a certificate from the organisation's current CA",
        level=logging.ERROR,
    )


def test_handshake_under_way_is_checked_against_the_new_cas(
    pki: Pki, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that passed its handshake under the old CAs is refused under the new."""
    (hub_port,) = free_ports(1)
    cas = pki.genesis_cas(*ALL)
    hub = make_switch(pki, "hub", "water", port=hub_port, cas=cas)
    p = make_switch(pki, "p", "parks", cas=cas, peers=[addr("hub", hub_port)])

    async def accept_then_remove_parks(*args: Any, **kwargs: Any) -> Established:
        est = await accept(*args, **kwargs)
        hub.set_trusted_cas(pki.genesis_cas("water", "roads"))  # governance, meanwhile
        return est

    monkeypatch.setattr(switch_module, "accept", accept_then_remove_parks)

    async def main() -> None:
        try:
            await hub.start()
            await p.start()
            await eventually(
                lambda: _said(
                    caplog,
                    "hub",
                    "refused peer p at",
                    "the CA of organisation 'parks' is no longer trusted",
                    level=logging.WARNING,
                ),
                what="the late refusal",
            )
            await eventually(
                lambda: _said(
                    caplog,
                    "p",
                    "refused our certificate: wrong CA",
                    "'parks'",
                    level=logging.WARNING,
                ),
                what="p told why",
            )
            assert hub.connected() == []
        finally:
            await stop_all(hub, p)

    run(main())


def test_bad_ca_lists_are_refused_and_change_nothing(pki: Pki) -> None:
    hub = make_switch(pki, "hub", "water")
    contexts = (hub._server_ctx, hub._client_ctx)
    with pytest.raises(ConfigError, match="trust store is empty"):
        hub.set_trusted_cas([])
    with pytest.raises(ConfigError, match="organisation CA #2"):
        hub.set_trusted_cas([pki.ca("water")[0], b"not a certificate"])
    assert (hub._server_ctx, hub._client_ctx) == contexts


def test_the_passphrase_is_kept_out_of_reprs(pki: Pki) -> None:
    hub = make_switch(pki, "hub", "water")
    assert PASSPHRASE not in repr(vars(hub))
