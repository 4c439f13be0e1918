"""Refused connections over real TLS: the reason is logged in plain words on BOTH sides."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from p2p_net import Pki, addr, eventually, free_ports, lines, make_switch, run, stop_all

from citychain.p2p.switch import Switch


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def _both_sides(
    caplog: pytest.LogCaptureFixture,
    hub: Switch,
    other: Switch,
    hub_says: list[str],
    other_says: list[str],
    *more: tuple[str, list[str]],
) -> None:
    """Run both switches until each logged a warning with its words (and ``more``)."""
    caplog.set_level(logging.DEBUG, logger="citychain.p2p")
    wanted = [("hub", hub_says), ("x", other_says), *more]

    def said(node: str, words: list[str]) -> bool:
        return any(all(w in m for w in words) for m in lines(caplog, node, logging.WARNING))

    async def main() -> None:
        try:
            await hub.start()
            await other.start()
            # Generous: on a loaded machine (a GM peer's SM2 work, other tests) the words
            # come late, not differently.
            await eventually(
                lambda: all(said(n, w) for n, w in wanted), timeout=15, what=str(wanted)
            )
            assert hub.connected() == [] and other.connected() == []
        finally:
            await stop_all(hub, other)

    run(main())


def _mutual(
    pki: Pki, x_files: tuple[Path, Path], x_org: str = "roads", **x_kwargs: object
) -> tuple[Switch, Switch]:
    """``hub`` (water) and ``x`` (roads, with the given files and settings) dial each other."""
    hub_port, x_port = free_ports(2)
    hub = make_switch(pki, "hub", "water", port=hub_port, peers=[addr("x", x_port)])
    x = make_switch(
        pki,
        "x",
        x_org,
        port=x_port,
        files=x_files,
        peers=[addr("hub", hub_port)],
        **x_kwargs,  # type: ignore[arg-type]
    )
    return hub, x


def test_certificate_from_an_unknown_ca(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    rogue_files = pki.node("x", "rogue")
    # x trusts the genesis CAs (and its own); hub's genesis does not know the rogue CA.
    hub, x = _mutual(pki, rogue_files, "rogue", cas=pki.genesis_cas("water", "roads", "rogue"))
    _both_sides(
        caplog,
        hub,
        x,
        # x dialled hub: hub's OpenSSL refused x's certificate inside the handshake ...
        ["refused peer at 127.0.0.1:", "wrong CA", "does not chain to any organisation CA"],
        # ... and x, hearing nothing, says what that silence means.
        ["peer hub at 127.0.0.1:", "refused our certificate: wrong CA", "does not trust our CA"],
        # hub dialled x: hub checked x's certificate after the handshake and told x why.
        ("hub", ["refused peer x at 127.0.0.1:", "wrong CA", "the certificate of x does not"]),
        (
            "x",
            ["peer hub at", "refused our certificate: wrong CA", "the certificate of x does not"],
        ),
    )
    assert hub.peers()[0].last_error == "refused: wrong CA"
    assert x.peers()[0].last_error == "refused by peer: wrong CA"


def test_expired_certificate(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    files = pki.node("x", "roads", not_before=start, not_after=start + timedelta(days=30))
    hub, x = _mutual(pki, files)
    words = ["expired", "the certificate of x expired on 2020-01-31 00:00:00 UTC"]
    _both_sides(
        caplog,
        hub,
        x,
        ["refused peer x at 127.0.0.1:", *words],
        ["peer hub at 127.0.0.1:", "refused our certificate", *words],
    )
    errors = lines(caplog, "x", logging.ERROR)
    assert any("our certificate (node x) expired on 2020-01-31" in m for m in errors)


def test_certificate_not_yet_valid(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    files = pki.node("x", "roads", not_before=start, not_after=start + timedelta(days=30))
    hub, x = _mutual(pki, files)
    date = start.strftime("%Y-%m-%d %H:%M:%S UTC")
    words = ["clock skew / not yet valid", f"not valid before {date}", "check the clocks"]
    _both_sides(
        caplog,
        hub,
        x,
        ["refused peer x at", *words],
        ["peer hub at", "refused our certificate", *words],
    )


def test_certificate_for_another_chain(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    files = pki.node("x", "roads", chain="other-chain")
    hub, x = _mutual(pki, files, chain="other-chain")
    # Each end sees the mismatch in the other's certificate and refuses it (so a dialler
    # refuses the acceptor before it would read the acceptor's own refusal).
    _both_sides(
        caplog,
        hub,
        x,
        ["refused peer x at", "wrong chain id", "x is on chain 'other-chain', hub is on chain"],
        ["refused peer hub at", "wrong chain id", "hub is on chain 'city-test', x is on chain"],
    )
    assert x.peers()[0].last_error == "refused: wrong chain id"


def test_hello_with_another_genesis(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    other_genesis = bytes(32)
    hub, x = _mutual(pki, pki.node("x", "roads"), genesis=other_genesis)
    words = ["wrong genesis", "different genesis files"]
    _both_sides(
        caplog,
        hub,
        x,
        ["hub has genesis hash 0001020304050607…, x has 0000000000000000…", *words],
        ["x has genesis hash 0000000000000000…, hub has 0001020304050607…", *words],
    )
    # Each side both refused (as dialler, after reading the acceptor's hello) and was refused.
    for node, peer in (("hub", "x"), ("x", "hub")):
        said = lines(caplog, node, logging.WARNING)
        assert any(m.startswith(f"refused peer {peer} at") for m in said), said
        assert any(m.startswith(f"peer {peer} at") and "refused us" in m for m in said), said


def test_a_peer_of_the_other_crypto_suite_is_refused_in_words(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    # x's genesis names sm2-sm3 (so its genesis hash differs too): the suite is what is said.
    gm = pki.gm_node("x", "roads").switch_args()
    hub, x = _mutual(pki, gm.pop("files"), genesis=bytes(32), **gm)
    words = ["wrong crypto suite", "a network runs the one suite its genesis names"]
    _both_sides(
        caplog,
        hub,
        x,
        ["hub runs the ed25519 crypto suite, x runs sm2-sm3", *words],
        ["x runs the sm2-sm3 crypto suite, hub runs ed25519", *words],
    )
    assert {hub.peers()[0].last_error, x.peers()[0].last_error} <= {
        "refused: wrong crypto suite",
        "refused by peer: wrong crypto suite",
    }
    assert not any("wrong genesis" in m for m in lines(caplog, "hub", logging.WARNING))


def test_dialled_name_does_not_match_certificate(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="citychain.p2p")

    async def main() -> None:
        charlie = make_switch(pki, "charlie", "roads")
        await charlie.start()
        # alpha thinks bravo listens where charlie does.
        alpha = make_switch(pki, "alpha", "water", peers=[addr("bravo", charlie)])
        try:
            await alpha.start()
            words = ["no such peer", "alpha dialled bravo at 127.0.0.1:", "certificate there says"]
            await eventually(
                lambda: (
                    any(
                        all(w in m for w in ["refused peer bravo at", *words])
                        for m in lines(caplog, "alpha", logging.WARNING)
                    )
                    and any(
                        all(w in m for w in ["peer alpha at", "refused us", *words])
                        for m in lines(caplog, "charlie", logging.WARNING)
                    )
                ),
                what="name mismatch logged on both sides",
            )
            assert alpha.connected() == [] and charlie.connected() == []
            assert alpha.peers()[0].last_error == "refused: no such peer"
        finally:
            await stop_all(alpha, charlie)

    run(main())


def test_unknown_inbound_peer_is_accepted_and_logged(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="citychain.p2p")

    async def main() -> None:
        hub = make_switch(pki, "hub", "water")
        await hub.start()
        newcomer = make_switch(pki, "newcomer", "roads", peers=[addr("hub", hub)])
        try:
            await newcomer.start()
            await eventually(lambda: hub.connected() == ["newcomer"])
            (info,) = hub.peers()
            assert (info.name, info.org_id, info.direction) == ("newcomer", "roads", "in")
        finally:
            await stop_all(hub, newcomer)

    run(main())
    assert any(
        "accepted node newcomer of organisation roads" in m and "not in our peer list" in m
        for m in lines(caplog, "hub", logging.INFO)
    )
