"""GM networks over real TLS: peers are authenticated by their SM2 certificates.

On an ``sm2-sm3`` chain each node's proof of its SM2 node key (a signature over both TLS
certificates and both fresh nonces) carries its SM2 node certificate, which must come from the
SM2 CA the chain lists for the node's organisation, be valid now and be for that node and that
very key. Every refusal is said in words on both sides (:mod:`citychain.p2p.nodekey`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from p2p_net import GmNode, Pki, addr, eventually, free_ports, lines, make_switch, run, stop_all

from citychain.crypto import SM2_SM3, Signer
from citychain.crypto.sm2_certs import issue_sm2_ca, parse_sm2_cert, verify_sm2_cert
from citychain.errors import ConfigError, PeerRefused
from citychain.p2p.frames import NodeKeyProof, decode_control
from citychain.p2p.switch import Switch


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def _pair(pki: Pki, x: GmNode, **x_kwargs: Any) -> tuple[Switch, Switch]:
    """``hub`` (water, a sound GM node) and ``x`` (roads) dial each other."""
    hub_port, x_port = free_ports(2)
    hub = make_switch(
        pki,
        "hub",
        "water",
        port=hub_port,
        peers=[addr("x", x_port)],
        **pki.gm_node("hub", "water").switch_args(),
    )
    args = x.switch_args() | x_kwargs
    sw = make_switch(pki, "x", "roads", port=x_port, peers=[addr("hub", hub_port)], **args)
    return hub, sw


def _refused_both_ways(
    caplog: pytest.LogCaptureFixture, hub: Switch, x: Switch, words: list[str]
) -> None:
    """hub refuses x with ``words`` and x hears it was refused with the same words."""
    caplog.set_level(logging.DEBUG, logger="citychain.p2p")

    def said(node: str, must: list[str]) -> bool:
        return any(all(w in m for w in must) for m in lines(caplog, node, logging.WARNING))

    async def main() -> None:
        try:
            await hub.start()
            await x.start()
            await eventually(
                lambda: (
                    said("hub", ["refused peer x at", *words])
                    and said("x", ["peer hub at", "refused our", *words])
                ),
                timeout=15,  # a loaded machine makes the words late, not different
                what=str(words),
            )
            # hub never takes x. (When hub dials, x as acceptor counts the link up once it has
            # sent its proof, until hub's refusal of that proof arrives, as on every chain.)
            assert hub.connected() == []
        finally:
            await stop_all(hub, x)

    run(main())


def test_two_gm_nodes_of_two_organisations_connect_by_their_sm2_certificates(pki: Pki) -> None:
    hub, x = _pair(pki, pki.gm_node("x", "roads"))

    async def main() -> None:
        try:
            await hub.start()
            await x.start()
            await eventually(lambda: hub.connected() == ["x"] and x.connected() == ["hub"])
        finally:
            await stop_all(hub, x)

    run(main())
    # What x sends is a GM certificate from roads' SM2 CA, for the key that signs its proof.
    sent = x._local.gm_cert
    cert = verify_sm2_cert(sent, pki.gm_ca("roads")[0], at_ms=_now_ms())
    assert cert.public_key == x._local.signer.public_key  # type: ignore[union-attr]
    assert (cert.subject_cn, cert.subject_o) == ("x", "roads")
    # On the wire the proof frame carries it as a third item (an Ed25519 proof has two).
    proof = NodeKeyProof(b"\x01" * 64, sent)
    assert decode_control(proof.encode()) == proof
    assert decode_control(NodeKeyProof(b"\x01" * 64).encode()) == NodeKeyProof(b"\x01" * 64)


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def test_an_sm2_certificate_from_another_organisations_ca_is_refused(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    # x (roads) presents an SM2 certificate that water's SM2 CA issued: not its organisation's.
    hub, x = _pair(pki, pki.gm_node("x", "roads", gm_org="water"))
    _refused_both_ways(
        caplog,
        hub,
        x,
        ["SM2 certificate not accepted", "the SM2 certificate of x (organisation roads)"],
    )


def test_an_sm2_certificate_from_an_unlisted_ca_is_refused(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    rogue = pki.gm_node("x", "roads")
    pki.gm_cas.pop("roads")  # the chain lists another SM2 CA for roads than the one that issued
    hub, x = _pair(pki, rogue)
    _refused_both_ways(
        caplog, hub, x, ["SM2 certificate not accepted", "the SM2 certificate of x", "roads"]
    )


def test_an_expired_sm2_certificate_is_refused(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    old = pki.gm_node("x", "roads", not_before=start, not_after=start + timedelta(days=30))
    hub, x = _pair(pki, old)
    _refused_both_ways(caplog, hub, x, ["expired", "the SM2 certificate of x"])


def test_an_sm2_certificate_for_another_node_is_refused(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    hub, x = _pair(pki, pki.gm_node("x", "roads", cert_name="y"))
    _refused_both_ways(
        caplog, hub, x, ["SM2 certificate not accepted", "is for node 'y' of organisation 'roads'"]
    )


def test_an_sm2_certificate_for_another_key_is_refused_at_start_and_on_the_wire(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    other = Signer.generate(SM2_SM3).public_key
    bad = pki.gm_node("x", "roads", cert_key=other)
    with pytest.raises(ConfigError, match="not for this node's key"):
        make_switch(pki, "x", "roads", **bad.switch_args())
    # A node that sends it anyway (its own start check bypassed) is refused by its peers.
    hub, x = _pair(pki, pki.gm_node("x", "roads"))
    x._local = replace(x._local, gm_cert=parse_sm2_cert(bad.gm_cert).der)
    _refused_both_ways(caplog, hub, x, ["SM2 certificate not accepted", "certifies another key"])


def test_a_gm_node_that_sends_no_sm2_certificate_is_refused(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    hub, x = _pair(pki, pki.gm_node("x", "roads"))
    x._local = replace(x._local, gm_cert=b"")
    _refused_both_ways(
        caplog, hub, x, ["SM2 certificate not accepted", "x sent no SM2 certificate"]
    )


def test_a_gm_node_needs_an_sm2_node_key_and_certificate_to_start(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="naming its SM2 node key"):
        make_switch(pki, "x", "roads", crypto_suite="sm2-sm3")  # TLS cert names no key
    gm = pki.gm_node("x", "roads")
    with pytest.raises(ConfigError, match="gm_cert_file"):
        make_switch(
            pki, "x", "roads", files=gm.files, node_signer=gm.signer, crypto_suite="sm2-sm3"
        )
    with pytest.raises(ConfigError, match="SM2 CA of organisation 'roads'"):
        make_switch(
            pki, "x", "roads", **gm.switch_args(), gm_ca_pems={"roads": pki.gm_ca("water")[0]}
        )


def test_governance_replacing_an_organisations_sm2_ca_closes_and_refuses_its_old_certificates(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="citychain.p2p")
    hub, x = _pair(pki, pki.gm_node("x", "roads"))

    def refused_by_hub() -> list[str]:
        return [
            m
            for m in lines(caplog, "hub")
            if "x" in m and "SM2 certificate not accepted" in m and "the SM2 certificate of x" in m
        ]

    async def main() -> None:
        try:
            await hub.start()
            await x.start()
            await eventually(lambda: hub.connected() == ["x"])
            assert not refused_by_hub()
            # roads gets a new SM2 CA (x's certificate is from the old one): hub closes the
            # established connection and refuses x's next ones, in words.
            fresh = Signer.generate(SM2_SM3).secret
            hub.set_trusted_gm_cas(
                {"water": pki.gm_ca("water")[0], "roads": issue_sm2_ca("roads", "R", fresh)}
            )
            assert any("organisation SM2 CAs now" in m for m in lines(caplog, "hub"))
            await eventually(lambda: "x" not in hub.connected() and bool(refused_by_hub()))
            await eventually(
                lambda: any(m.startswith("refused peer x at") for m in refused_by_hub()),
                timeout=10,
            )
            assert "x" not in hub.connected()
        finally:
            await stop_all(hub, x)

    run(main())


def test_a_peer_whose_tls_certificate_names_no_sm2_node_key_is_refused_as_node_key(
    pki: Pki,
) -> None:
    from citychain.p2p.certs import read_node_cert
    from citychain.p2p.nodekey import check_gm_cert

    plain = read_node_cert(pki.node("x", "roads")[0].read_bytes())  # names no node key
    gm = pki.gm_node("x", "roads")
    with pytest.raises(PeerRefused) as err:
        check_gm_cert(
            plain,
            parse_sm2_cert(gm.gm_cert).der,
            chain_id="city-test",
            gm_cas={"roads": parse_sm2_cert(pki.gm_ca("roads")[0])},
            now_ms=_now_ms(),
        )
    assert err.value.reason_code == "node_key"
    assert "names no SM2 node key" in err.value.message
