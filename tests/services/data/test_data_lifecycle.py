"""The request / grant / revoke / expire / download lifecycle against a tiny model, driven by
hypothesis in whole seconds (so downloads land exactly on a grant's end as often as not):
whatever order requests, decisions, revocations, downloads and the passing of time come in,
every receipt's code is the one the model predicts, and the audit trail (of the resource, and
the citizen's view) lists exactly the model's downloads.

One chain serves every example (each example registers a resource of its own), so the
machine costs one block per step."""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_net import (  # type: ignore[import-not-found]
    APPROVER,
    AUDITOR,
    CITIZEN,
    CITIZEN_TAG,
    DEPT,
    PROV,
    Net,
    conditional,
    ok,
    resource,
    version_args,
)
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from citychain.crypto import Signer
from citychain.errors import ErrorCode
from citychain.execution import BlockContext

_NET: list[Net] = []
_DIR: list[tempfile.TemporaryDirectory[str]] = []
_SEQ = itertools.count(1)


def shared_net() -> Net:
    if not _NET:
        d = tempfile.TemporaryDirectory(prefix="citychain-data-sm-")
        _DIR.append(d)
        _NET.append(Net(Path(d.name) / "chain"))
    return _NET[0]


@dataclass
class Grant:
    gid: int
    grantee: bytes
    until: int
    revoked: bool = False


@dataclass
class Request:
    rid: int
    requester: bytes
    until: int
    state: str


ACTORS = {"dept": DEPT, "citizen": CITIZEN, "auditor": AUDITOR, "prov": PROV, "approver": APPROVER}


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.net = shared_net()
        self.code = f"201001/{next(_SEQ)}"
        self.sharing = "unconditional"
        self.requests: list[Request] = []
        self.grants: list[Grant] = []
        self.downloads: list[tuple[bytes, int]] = []  # (grantee, grant id)
        self.seen = 0  # the citizen's view up to here belongs to earlier examples

    @initialize(sharing=st.sampled_from(["unconditional", "conditional", "none"]))
    def register(self, sharing: str) -> None:
        self.sharing = sharing
        rec = (
            conditional(self.code)
            if sharing == "conditional"
            else resource(self.code, sharing=sharing)
        )
        ok(self.net.send(PROV, "register_resource", rec))
        ok(self.net.send(PROV, "add_version", version_args(self.code, 1, subjects=[CITIZEN_TAG])))
        # The citizen's view holds the earlier examples' entries too: read it from here on.
        while True:
            page = self._private("accesses", subject=CITIZEN_TAG, after=self.seen, limit=200)
            if not page:
                break
            self.seen = page[-1]["seq"]

    def _send(self, who: Signer, method: str, args: dict[str, Any]) -> tuple[Any, int]:
        """Send in the next block; (receipt, that block's time)."""
        r = self.net.send(who, method, args)
        return r, self.net.time

    @rule(
        who=st.sampled_from(["dept", "citizen", "auditor"]),
        period=st.integers(1, 8).map(lambda k: 1000 * k),
    )
    def request(self, who: str, period: int) -> None:
        args: dict[str, Any] = {"code": self.code, "purpose": f"check {who}", "period": period}
        if who == "citizen":
            args["subject"] = CITIZEN_TAG
        r, now = self._send(ACTORS[who], "request_access", args)
        expect = {"unconditional": "granted", "conditional": "pending", "none": "refused"}
        assert r.code == "ok", r.message
        assert r.result["state"] == expect[self.sharing]
        grantee = ACTORS[who].address
        self.requests.append(Request(r.result["request"], grantee, now + period, r.result["state"]))
        if r.result["state"] == "granted":
            self.grants.append(Grant(r.result["grant"], grantee, now + period))

    @precondition(lambda self: self.requests)
    @rule(data=st.data(), approve=st.booleans(), who=st.sampled_from(["approver", "prov"]))
    def decide(self, data: st.DataObject, approve: bool, who: str) -> None:
        req = data.draw(st.sampled_from(self.requests))
        r, now = self._send(
            ACTORS[who], "decide", {"request": req.rid, "approve": approve, "reason": "reviewed"}
        )
        if req.state != "pending":
            assert r.code == ErrorCode.REQUEST_DECIDED, r.message
        elif who != "approver":
            assert r.code == ErrorCode.NOT_APPROVER, r.message
        elif approve and req.until <= now:
            assert r.code == ErrorCode.GRANT_EXPIRED, r.message
        else:
            assert r.code == "ok", r.message
            req.state = "granted" if approve else "refused"
            assert r.result["state"] == req.state
            if approve:
                self.grants.append(Grant(r.result["grant"], req.requester, req.until))

    @precondition(lambda self: self.grants)
    @rule(data=st.data(), who=st.sampled_from(["prov", "dept"]))
    def revoke(self, data: st.DataObject, who: str) -> None:
        g = data.draw(st.sampled_from(self.grants))
        r, _ = self._send(ACTORS[who], "revoke", {"grant": g.gid, "reason": "ended"})
        if who != "prov":
            assert r.code == ErrorCode.NOT_PROVIDER, r.message
        elif g.revoked:
            assert r.code == ErrorCode.GRANT_REVOKED, r.message
        else:
            assert r.code == "ok", r.message
            g.revoked = True

    @precondition(lambda self: self.grants)
    @rule(data=st.data(), who=st.sampled_from(["dept", "citizen", "auditor"]))
    def download(self, data: st.DataObject, who: str) -> None:
        g = data.draw(st.sampled_from(self.grants))
        signer = ACTORS[who]
        r, now = self._send(signer, "record_access", {"grant": g.gid, "version": 1})
        if signer.address != g.grantee:
            assert r.code == ErrorCode.WRONG_GRANTEE, r.message
        elif g.revoked:
            assert r.code == ErrorCode.GRANT_REVOKED, r.message
        elif now >= g.until:
            assert r.code == ErrorCode.GRANT_EXPIRED, r.message
        else:
            assert r.code == "ok", r.message
            self.downloads.append((g.grantee, g.gid))

    @rule(ms=st.integers(1, 6).map(lambda k: 1000 * k))
    def wait(self, ms: int) -> None:
        self.net.block(at=self.net.time + ms)

    def _private(self, method: str, **args: Any) -> Any:
        header = self.net.chain.last_header()
        assert header is not None
        ctx = BlockContext("data-chain", self.net.height, header.time, header.proposer)
        return self.net.chain.executor.query(
            self.net.chain.state, ctx, "data", method, args, private=True
        )

    @invariant()
    def the_trail_lists_exactly_the_model_s_downloads(self) -> None:
        if not self.requests:
            return
        trail = self._private("audit", code=self.code, limit=200)
        got = [(e["by"], e["grant"]) for e in trail if e["action"] == "download"]
        assert got == self.downloads
        # The version lists the citizen: every download of it is in the citizen's view.
        view = self._private("accesses", subject=CITIZEN_TAG, after=self.seen, limit=200)
        mine = [
            (e["by"], e["grant"])
            for e in view
            if e["code"] == self.code and e["action"] == "download"
        ]
        assert mine == self.downloads
        states = {g["id"]: g["state"] for g in self._private("grants", code=self.code, limit=200)}
        now = self.net.time
        for g in self.grants:
            model = "revoked" if g.revoked else ("active" if now < g.until else "expired")
            assert states[g.gid] == model


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(
    max_examples=25,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
