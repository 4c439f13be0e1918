"""The data directory on a running network of four validators (real processes, mutual TLS):
three departments and a citizen, end to end through the SDK, the signed REST routes and the
blob store.

What the departments and the citizen rely on:

* the health bureau registers resources, uploads a file that only it and its grantees can
  open, and the version enters the catalogue only with every chunk stored;
* transport asks, an approver grants, the key is wrapped for it, and it downloads exactly the
  file, verified against the hashes the chain anchored; a revoked grant opens nothing more,
  and a later version is not wrapped for the revoked grantee;
* "not shared" is refused and audited; a refused request gets nothing;
* private reads need a signature and the right reader (401/403 with the reason); an auditor
  reads every audit trail;
* the citizen, signed in with their did:key, asks for records about themselves and sees
  exactly which department accessed them, when and for what stated purpose;
* anyone checks a file against the catalogue, with a proof verified against the validators;
* the blocks say no more than the signed reads: a request, a decision, a download or a
  version's subjects are withheld from anyone but the call's signer and members, and the
  event stream carries them only to a subscriber that signed in as one of those.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest
from netproc import FAST_PARAMS, LocalNet  # type: ignore[import-not-found]
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from citychain.crypto import ED25519, Signer
from citychain.errors import CitychainError, ErrorCode, ExecutionFailure, NotFound
from citychain.sdk import Client
from citychain.sdk._events import events_url
from citychain.services.data.sdk import DATA_GAS_LIMIT, _transfer
from citychain.services.data.shapes import (
    grant_key,
    state_key,
    subject_tag,
    version_key,
    version_subjects_key,
)
from citychain.services.identity.shapes import did_key
from citychain.types import Transaction
from pagecache import cached_pages, pages_can_be_dropped  # type: ignore[import-not-found]

pytestmark = pytest.mark.slow

SHARED = "101001/000001"  # conditional: one named approver
OPEN = "101002/000001"  # unconditional
CLOSED = "101003/000001"  # not shared
TIMED = "101004/000001"  # unconditional, for the expiry test
CUT = "101005/000001"  # an upload cut halfway
CHUNK = 64 * 1024


def _resource(code: str, provider: str, sharing: str, **over: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "code": code,
        "title": f"resource {code}",
        "provider": provider,
        "sharing": sharing,
        "description": "residents' health checks (test data)",
        "themes": ["health"],
        "keywords": ["checkup"],
        "update_cycle": "monthly",
        "media_type": "text/csv",
    }
    if sharing == "conditional":
        fields["sharing_condition"] = "for public-health duties only"
    fields.update(over)
    return fields


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    with LocalNet(tmp_path_factory.mktemp("data"), params=FAST_PARAMS, orgs=3) as n:
        n.start_all()
        yield n


def test_three_departments_and_a_citizen_share_data_through_the_chain(
    net: LocalNet, tmp_path: Path
) -> None:
    health, transport, civil = (net.signer(f"org{i}-admin") for i in (1, 2, 3))
    citizen = Signer.generate(ED25519)
    did = did_key(citizen.public_key)
    auditor = Signer.generate(ED25519)
    url = net.api(0)
    stream = connect(events_url(url, "data", None), open_timeout=30, proxy=None)
    with stream, Client(url) as c, c.subscribe("data", "pending", signer=health) as pending:
        # An auditor of the civil-affairs office (the governance role).
        tx = Transaction.create(
            civil,
            chain_id=c.status().chain_id,
            nonce=c.account(civil.address).pending_nonce,
            contract="gov",
            method="register_member",
            args={"public_key": auditor.public_key, "org": "org3", "roles": ["auditor"]},
        )
        c.submit(tx)
        assert c.wait_for_commit(tx.hash, timeout=60).ok

        d = c.data
        d.register_resource(health, **_resource(SHARED, "org1", "conditional",
                                                approvers=[health.address]))  # fmt: skip
        d.register_resource(health, **_resource(OPEN, "org1", "unconditional"))
        d.register_resource(health, **_resource(CLOSED, "org1", "none"))
        # The module's other tests share this network and may have registered theirs first.
        found = d.search(theme="health")["resources"]
        mine = (SHARED, OPEN, CLOSED)
        assert [r["code"] for r in found if r["code"] in mine] == [SHARED, OPEN, CLOSED]
        assert all("health" in r["themes"] for r in found), found

        # -- a version enters the catalogue only with its chunks stored ----------------------
        bogus = {
            "code": SHARED, "manifest_id": bytes(32), "plain_hash": bytes(32),
            "cipher_hash": bytes(32), "plain_size": 1, "cipher_size": 17,
            "cipher": "aes-256-gcm",
        }  # fmt: skip
        with pytest.raises(CitychainError) as refused:
            c.send(health, "data", "add_version", bogus, gas_limit=DATA_GAS_LIMIT)
        assert refused.value.code == ErrorCode.CHUNK_MISSING
        assert d.resource(SHARED)["versions"] == 0

        # -- upload: sealed here, only ciphertext leaves ------------------------------------
        data = os.urandom(5 * CHUNK + 123)
        src = tmp_path / "checkups.csv"
        src.write_bytes(data)
        seen: list[tuple[int, int]] = []
        up = d.upload(health, SHARED, src, subjects=[did], chunk_size=CHUNK,
                      progress=lambda done, total: seen.append((done, total)))  # fmt: skip
        assert up.version == 1 and up.plain_hash == hashlib.sha256(data).digest()
        assert seen[-1] == (len(data), len(data))
        blobs = net.layout.nodes[0].home / "data" / "blobs"
        stored = b"".join(p.read_bytes() for p in blobs.rglob("*") if p.is_file())
        assert data[:4096] not in stored  # the node holds no plaintext

        # -- transport asks, the approver grants, the key is wrapped, it downloads ----------
        asked = d.request_access(transport, SHARED, "bus-route planning near clinics",
                                 period=3_600_000, legal_basis="city regulation 12")  # fmt: skip
        assert asked["state"] == "pending"
        with pytest.raises(ExecutionFailure) as not_approver:
            d.decide(civil, asked["request"], True)
        assert not_approver.value.code == ErrorCode.NOT_APPROVER
        granted = d.decide(health, asked["request"], True, "duty confirmed")
        assert granted["state"] == "granted"
        t_grant = granted["grant"]
        with pytest.raises(ExecutionFailure) as no_key:  # no wrap yet: no key
            d.download(transport, SHARED, 1, tmp_path / "early", grant=t_grant)
        assert no_key.value.code == ErrorCode.NO_GRANT
        assert not (tmp_path / "early").exists()
        assert d.grant_keys(health, SHARED) == [t_grant]
        out = tmp_path / "transport.csv"
        manifest = d.download(transport, SHARED, 1, out, grant=t_grant,
                              purpose="route study 2027")  # fmt: skip
        assert out.read_bytes() == data and manifest.id == up.manifest_id
        # Another node's store lacks the chunks (each node keeps its own disk): it says so
        # before any access is recorded, so the audit trail below has no phantom download.
        with Client(net.api(1)) as other, pytest.raises(NotFound) as elsewhere:
            other.data.download(transport, SHARED, 1, tmp_path / "elsewhere", grant=t_grant)
        assert elsewhere.value.code == ErrorCode.CHUNK_MISSING
        assert "not copied between nodes" in elsewhere.value.message
        assert not (tmp_path / "elsewhere").exists()

        # -- refusals: not shared, refused by the approver, a stranger's download ------------
        closed = d.request_access(civil, CLOSED, "census", period=3_600_000)
        assert closed["state"] == "refused" and closed["grant"] == 0
        asked2 = d.request_access(civil, SHARED, "curiosity", period=3_600_000)
        assert d.decide(health, asked2["request"], False, "no duty shown")["state"] == "refused"
        with pytest.raises(ExecutionFailure) as wrong:
            d.download(civil, SHARED, 1, tmp_path / "civil", grant=t_grant)
        assert wrong.value.code == ErrorCode.NO_GRANT  # no key for it, so nothing recorded

        # -- the citizen asks for records about themselves -----------------------------------
        mine = d.request_access(citizen, SHARED, "my own records", period=3_600_000,
                                subject=did)  # fmt: skip
        assert mine["state"] == "pending"
        c_grant = d.decide(health, mine["request"], True)["grant"]
        d.grant_keys(health, SHARED)
        own = tmp_path / "mine.csv"
        d.download(citizen, SHARED, 1, own, grant=c_grant)
        assert own.read_bytes() == data

        # -- revocation: nothing more opens, no key to a later version -----------------------
        d.revoke(health, t_grant, "project ended")
        with pytest.raises(ExecutionFailure) as revoked:
            d.download(transport, SHARED, 1, tmp_path / "late", grant=t_grant)
        assert revoked.value.code == ErrorCode.GRANT_REVOKED
        src.write_bytes(data + b"v2")
        assert d.upload(health, SHARED, src, subjects=[did], chunk_size=CHUNK).version == 2
        assert d.grant_keys(health, SHARED) == [c_grant]  # not transport's
        with pytest.raises(ExecutionFailure) as gone:
            d.download(transport, SHARED, 2, tmp_path / "v2", grant=t_grant)
        assert gone.value.code == ErrorCode.NO_GRANT

        # -- signed reads: 401 unsigned, 403 the wrong reader, the auditor reads -----------
        audit = httpx.get(f"{url}/v1/data/resources/{SHARED}/audit")
        assert audit.status_code == 401
        assert audit.json()["code"] == "signature_missing"
        with pytest.raises(CitychainError) as forbidden:
            d.audit(transport, SHARED)
        assert forbidden.value.code == ErrorCode.NOT_AUTHORIZED
        assert "provider or an auditor" in forbidden.value.message
        trail = d.audit(auditor, SHARED)
        actions = [e["action"] for e in trail]
        assert actions == [
            "request", "granted", "download", "request", "refused",
            "request", "granted", "download", "revoked",
        ], actions  # fmt: skip
        assert d.audit(health, SHARED) == trail

        # -- the citizen's view: exactly the accesses made to records about them -----------
        view = d.accesses(citizen)
        downloads = [(e["org"], e["purpose"]) for e in view if e["action"] == "download"]
        assert downloads == [("org2", "route study 2027"), ("", "my own records")]
        assert all(e["title"] == f"resource {SHARED}" for e in view)
        with pytest.raises(CitychainError) as nosy:
            d.accesses(transport, did)
        assert nosy.value.code == ErrorCode.NOT_AUTHORIZED

        # -- no raw state read or proof of private records; the public version counts ------
        raw = httpx.get(f"{url}/v1/state/{state_key(grant_key(t_grant)).hex()}")
        assert raw.status_code == 403 and raw.json()["code"] == "not_authorized"
        tags = httpx.get(f"{url}/v1/state/{state_key(version_subjects_key(SHARED, 1)).hex()}")
        assert tags.status_code == 403
        public = c.get_state(state_key(version_key(SHARED, 1)), verify=False).decode()
        assert public["subjects"] == 1 and did.encode() not in repr(public).encode()

        # -- nor do the blocks tell it: private calls are withheld, their events not streamed --
        asked_tx = d.request(citizen, mine["request"])["tx"]
        anon = httpx.get(f"{url}/v1/txs/{asked_tx.hex()}").json()
        assert anon["tx"]["withheld"] is True and anon["receipt"] is None
        assert (anon["tx"]["contract"], anon["tx"]["method"]) == ("data", "request_access")
        for height in range(1, c.status().height + 1):
            block = httpx.get(f"{url}/v1/blocks/{height}").text
            assert "my own records" not in block and "route study" not in block
            assert subject_tag(did).hex() not in block
        mine_tx = c.tx(asked_tx, signer=citizen).tx
        assert mine_tx is not None and mine_tx.args["purpose"] == "my own records"
        assert c.tx(asked_tx, signer=auditor).tx == mine_tx  # a member in good standing
        assert c.tx(asked_tx, signer=Signer.generate(ED25519)).withheld is not None
        streamed = []
        with contextlib.suppress(TimeoutError):
            while True:
                streamed.append(json.loads(stream.recv(timeout=1))["event"]["type"])
        assert streamed[:3] == ["register"] * 3, streamed  # the catalogue is public
        assert set(streamed) <= {"register", "update", "retire"}, streamed
        # The approver, a member, subscribed with a signature: it sees requests wait for it.
        waiting = next(pending)
        assert waiting.event.attributes["request"] == asked["request"]

        # -- anyone verifies a file against the chain, with a proof ------------------------
        (check := tmp_path / "received.csv").write_bytes(data)
        with Client(net.api(2)) as other:
            (anchor,) = other.data.verify(check)
            assert (anchor.code, anchor.version, anchor.verified) == (SHARED, 1, True)
            assert anchor.signed_power * 3 > anchor.total_power * 2
            check.write_bytes(data[:-1] + b"!")
            assert other.data.verify(check) == []


class _Cut:
    """A file that fails to read after ``limit`` bytes, as a disk or a mount may."""

    def __init__(self, f: BinaryIO, limit: int) -> None:
        self.f, self.left = f, limit

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            raise OSError(5, "Input/output error")
        out = self.f.read(n if 0 <= n <= self.left else self.left)
        self.left -= len(out)
        return out

    def fileno(self) -> int:
        return self.f.fileno()

    def close(self) -> None:
        self.f.close()


def test_an_upload_cut_halfway_registers_nothing_and_resumes(
    net: LocalNet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    health = net.signer("org1-admin")
    with Client(net.api(3)) as c:
        d = c.data
        d.register_resource(health, **_resource(CUT, "org1", "unconditional"))
        src = tmp_path / "big.csv"
        src.write_bytes(os.urandom(40 * CHUNK))
        puts: list[str] = []
        asks: list[str] = []
        c._http.event_hooks["request"].append(
            lambda r: puts.append(r.url.path) if r.method == "PUT" else None
        )
        c._http.event_hooks["request"].append(
            lambda r: asks.append(r.url.path) if r.url.path == "/v1/data/blobs/missing" else None
        )
        real_open = _transfer._open

        def cut_open(source: object) -> tuple[object, bool, int]:
            f, close, total = real_open(source)  # type: ignore[arg-type]
            return _Cut(f, 20 * CHUNK + 5), close, total  # type: ignore[arg-type]

        monkeypatch.setattr(_transfer, "_open", cut_open)
        monkeypatch.setattr(_transfer, "BATCH_CHUNKS", 16)  # small chunks: batches of 16
        with pytest.raises(CitychainError) as cut:
            d.upload(health, CUT, src, chunk_size=CHUNK)
        assert cut.value.code == ErrorCode.BAD_ARGUMENTS
        assert "no version was anchored" in cut.value.message
        assert d.resource(CUT)["versions"] == 0
        sent = len(puts)
        assert sent == 16  # the first batch, sealed before the cut; no manifest
        assert asks == []  # a fresh key's chunks are all new: the node is not asked
        monkeypatch.setattr(_transfer, "_open", real_open)
        up = d.upload(health, CUT, src, chunk_size=CHUNK)
        assert up.version == 1 and up.plain_hash == hashlib.sha256(src.read_bytes()).digest()
        resent = [p for p in puts[sent:] if p.startswith("/v1/data/blobs/")]
        assert len(resent) == 40 - sent  # the chunks stored before the cut were not sent again
        assert len(asks) == 3  # the resumed upload asked about each of its batches (16, 16, 8)
        assert not any(p.name.endswith(".citychain-upload") for p in tmp_path.iterdir())

        # A download that fails halfway leaves nothing under its name, and no temporary file.
        grant = d.request_access(health, CUT, "backup check", period=3_600_000)["grant"]
        real_rechunk = _transfer._rechunk

        def cut_rechunk(stream: Iterator[bytes], manifest: object) -> Iterator[bytes]:
            chunks = real_rechunk(stream, manifest)  # type: ignore[arg-type]
            yield next(chunks)
            raise CitychainError("the node's stream broke", ErrorCode.CHUNK_MISSING)

        monkeypatch.setattr(_transfer, "_rechunk", cut_rechunk)
        dest = tmp_path / "restored" / "big.csv"
        dest.parent.mkdir()
        with pytest.raises(CitychainError) as broke:
            d.download(health, CUT, 1, dest, grant=grant)
        assert broke.value.code == ErrorCode.CHUNK_MISSING
        assert list(dest.parent.iterdir()) == []


def test_a_grant_expires_by_block_time(net: LocalNet, tmp_path: Path) -> None:
    health, transport = net.signer("org1-admin"), net.signer("org2-admin")
    with Client(net.api(1)) as c:
        d = c.data
        d.register_resource(health, **_resource(TIMED, "org1", "unconditional"))
        src = tmp_path / "open.csv"
        src.write_bytes(b"stop,lat,lon\n1,26.07,119.30\n")
        d.upload(health, TIMED, src)
        g = d.request_access(transport, TIMED, "timetables", period=2_000)
        assert g["state"] == "granted"  # unconditional: granted at once
        d.grant_keys(health, TIMED)
        time.sleep(2.5)
        with pytest.raises(ExecutionFailure) as expired:
            d.download(transport, TIMED, 1, tmp_path / "late.csv", grant=g["grant"])
        assert expired.value.code == ErrorCode.GRANT_EXPIRED
        with pytest.raises(NotFound):
            d.resource("101009/000009")


BIG = "101006/000001"  # unconditional: a 1 GiB archive
GIB = 1 << 30
MEMORY_LIMIT_MIB = 200
#: The SDK side runs in a fresh interpreter, which reports its own peak resident size
#: (``VmHWM``; ``ru_maxrss`` would survive ``exec`` and report the pytest worker's).
BIG_SCRIPT = r"""
import json, sys, time
from pathlib import Path
from citychain.crypto import ED25519, Signer
from citychain.sdk import Client



def peak_mib():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM:")).split()[1]) // 1024


url, secret, code, src, dest = sys.argv[1:6]
health = Signer(ED25519, bytes.fromhex(secret))
with Client(url, timeout=120) as c:
    d = c.data
    t0 = time.monotonic()
    up = d.upload(health, code, Path(src))
    t1 = time.monotonic()
    upload_peak = peak_mib()
    grant = d.request_access(health, code, "archive check", period=3_600_000)["grant"]
    d.download(health, code, up.version, Path(dest), grant=grant)  # checks every hash
    t2 = time.monotonic()
print(json.dumps({"version": up.version, "plain_size": up.plain_size,
                  "plain_hash": up.plain_hash.hex(), "upload_s": round(t1 - t0, 1),
                  "download_s": round(t2 - t1, 1), "upload_peak_mib": upload_peak,
                  "peak_mib": peak_mib()}))
"""


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(ln for ln in f if ln.startswith(field + ":")).split()[1])


@pytest.mark.timeout(300)
def test_a_gib_goes_through_a_node_and_back_in_bounded_memory_on_both_sides(
    net: LocalNet, tmp_path: Path
) -> None:
    """1 GiB sealed, uploaded over the node's HTTP API, anchored, then downloaded and checked
    against the anchored hash: the client stays under 200 MiB, and the node grows by less
    than that while it stores and serves the whole file (chunks stream; nothing is held
    whole on either side)."""
    health = net.signer("org1-admin")
    node = 2
    with Client(net.api(node)) as c:
        c.data.register_resource(health, **_resource(BIG, "org1", "unconditional"))
    src, dest = tmp_path / "archive.bin", tmp_path / "restored.bin"
    with open(src, "wb") as f:
        f.truncate(GIB)  # sparse: 1 GiB of zeros that takes no disk to write
    pid = net.procs[node].pid
    # Reset the node's peak to its size now ("5": proc(5), clear_refs), so the peak read after
    # is what this transfer made it reach, not an earlier test's.
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    node_before = _status_kib(pid, "VmHWM")
    proc = subprocess.run(
        [sys.executable, "-c", BIG_SCRIPT, net.api(node), health.secret.hex(), BIG,
         str(src), str(dest)],
        capture_output=True, text=True, check=False, timeout=280,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    zeros = hashlib.sha256()
    block = bytes(1 << 20)
    for _ in range(1024):
        zeros.update(block)
    assert result["plain_size"] == GIB and result["plain_hash"] == zeros.hexdigest(), result
    assert dest.stat().st_size == GIB
    # The download synced and dropped its file as it went (every SYNC_EVERY): at most the
    # last stretch written since is still in the page cache, not the whole GiB.
    if pages_can_be_dropped(tmp_path):
        page = os.sysconf("SC_PAGE_SIZE")
        assert cached_pages(dest) <= _transfer.SYNC_EVERY // page + 16, cached_pages(dest)
    said = " ".join(f"{k}={v}" for k, v in result.items() if k != "plain_hash")
    assert result["peak_mib"] < MEMORY_LIMIT_MIB, said
    node_growth_mib = (_status_kib(pid, "VmHWM") - node_before) / 1024
    assert node_growth_mib < MEMORY_LIMIT_MIB, f"node grew {node_growth_mib:.0f} MiB; {said}"
