"""Private data collections in the ``data`` contract: definitions and the hashes of values
that only the listed organisations' nodes hold.

Theory of operation
-------------------
**On chain, hashes only.** ``define_collection`` records a collection: its ``name``, the
``orgs`` whose nodes hold its values, ``block_to_live`` (0: kept), ``member_only_read``, and
Fabric's ``requiredPeerCount`` and ``maxPeerCount`` as ``required_peers`` (0 to
:data:`~citychain.types.private_data.MAX_PEER_COUNT`, default 0) and ``max_peers`` (0, the
default: no limit), ``required_peers <= max_peers`` when there is a limit. These two are
rules for the node that takes a value (off chain: how many peers it pushes to, how many
must acknowledge it before it answers); the chain only records them. A record holds them
only when they are not 0, so definitions made before they existed read as the defaults.
``put_private`` records version 1, 2, ... of an item ``key``: the 32-byte ``hash`` of
``value ‖ salt`` (the chain suite's hash; the node computed it when it took the value), its
``size``, the height, and the *purge height* ``height + block_to_live`` (0: never). The value
and the salt are never in a transaction, a receipt or an event: they travel from the node that
took them to the listed organisations' nodes over p2p (``citychain.node.private_data``).

**Who may do what.**

* ``define_collection``: a member in good standing of one of the listed organisations; every
  listed organisation must be on chain. Rule chosen (simple, documented): *naming an
  organisation binds it to nothing but receiving the values*, so no other organisation
  co-signs; a collection is never changed once defined (define a new one), so nobody can
  later add an organisation to the readers of values already shared.
* ``put_private``: a member in good standing of a listed organisation (Fabric's
  ``memberOnlyWrite``); ``not_in_collection`` otherwise.
* Reads of the definitions and of item metadata (hash, size, heights) are public: they hold
  no value. Reads of a *value* are the API's (a signed request; the signer a member of a
  listed organisation, or of any organisation when ``member_only_read`` is false).

**Purge.** ``pp/<purge height><name>\\0<key>\\0<version>`` indexes every item that expires;
``purge_due(after, through)`` lists those with a purge height in ``(after, through]``. Each
node asks it at every commit from the height it last purged through, deletes those values
from its private store and then records the new height, so a crash mid-way only repeats
deletions (idempotent). The hash stays on chain forever.
"""

from __future__ import annotations

from typing import Any

from citychain.errors import ErrorCode, NotFound
from citychain.execution import Context, arg_int, method, only_args, query
from citychain.services.data.contract import _state as st
from citychain.services.data.shapes import bad
from citychain.types import private_data as pv

GOV = "gov"
#: Most heights one ``purge_due`` answer looks at.
MAX_PURGE_SPAN = 10_000


def _member_org(ctx: Context) -> str | None:
    m: dict[str, Any] | None = ctx.call(GOV, "member", {"address": ctx.origin})
    if m is None or m.get("standing") != "ok":
        return None
    return str(m["org"])


def collection(ctx: Context, name: str) -> dict[str, Any]:
    """The definition, with ``required_peers`` and ``max_peers`` filled in (0 when the record
    has none: a definition made before they existed, or one that left them at the default)."""
    c: dict[str, Any] | None = st.get(ctx, pv.collection_key(name), "collection")
    if c is None:
        raise NotFound(f"no private data collection {name!r}", ErrorCode.COLLECTION_NOT_FOUND)
    required, most = pv.peer_counts(c)
    return {**c, "required_peers": required, "max_peers": most}


def _require_listed(ctx: Context, c: dict[str, Any], what: str) -> str:
    org = _member_org(ctx)
    if org is None or org not in c["orgs"]:
        raise st.refuse(
            ErrorCode.NOT_IN_COLLECTION,
            f"only a member of {', '.join(c['orgs'])} (the organisations of collection "
            f"{c['name']!r}) may {what}; {ctx.origin.hex()} is "
            + (f"a member of {org!r}" if org is not None else "no member in good standing"),
        )
    return org


class PrivateCollections:
    """The private-collection entry points, mixed into :class:`~._contract.Data`."""

    def _check_define_collection(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        only_args(
            args, "name", "orgs", "block_to_live", "member_only_read", "required_peers", "max_peers"
        )
        name = pv.check_collection_name(args.get("name"), "name")
        orgs = pv.check_orgs(args.get("orgs"))
        btl = (
            arg_int(args, "block_to_live", max_value=pv.MAX_BLOCK_TO_LIVE)
            if "block_to_live" in args
            else 0
        )
        mor = args.get("member_only_read", True)
        if type(mor) is not bool:
            raise bad("argument 'member_only_read' must be true or false")
        required, most = pv.check_peer_counts(
            args.get("required_peers", 0), args.get("max_peers", 0)
        )
        known = {str(o["id"]) for o in ctx.call(GOV, "orgs", {})}
        unknown = [o for o in orgs if o not in known]
        if unknown:
            raise bad(f"argument 'orgs': {', '.join(unknown)} is no organisation of this chain")
        if ctx.get(pv.collection_key(name)) is not None:
            raise st.refuse(
                ErrorCode.DUPLICATE,
                f"collection {name!r} is already defined (a definition never changes: define "
                "a collection of another name)",
            )
        rec: dict[str, Any] = {
            "name": name,
            "orgs": orgs,
            "block_to_live": btl,
            "member_only_read": mor,
        }
        # Recorded only when not the default, so a definition without them is the bytes it
        # always was (an old chain replays to the same state); reads fill in the defaults.
        if required:
            rec["required_peers"] = required
        if most:
            rec["max_peers"] = most
        _require_listed(ctx, rec, "define it (the definer's organisation must be listed)")
        return rec

    @method(check=_check_define_collection)
    def define_collection(self, ctx: Context, args: dict[str, Any], rec: dict[str, Any]) -> str:
        """``name``, ``orgs`` (organisation ids, the signer's own among them), optional
        ``block_to_live`` (blocks a value is kept after its ``put_private``; 0, the default,
        keeps it), ``member_only_read`` (default true), ``required_peers`` (peers that must
        acknowledge a value before the node that took it answers; default 0) and
        ``max_peers`` (most peers a value is pushed to; 0, the default: every listed one).
        Returns the name."""
        value = {**rec, "height": ctx.height, "tx": ctx.tx_hash, "by": ctx.origin}
        st.put(ctx, pv.collection_key(rec["name"]), value)
        counts = {k: rec[k] for k in ("required_peers", "max_peers") if k in rec}
        ctx.emit(
            "collection",
            name=rec["name"],
            orgs=rec["orgs"],
            block_to_live=rec["block_to_live"],
            **counts,
        )
        return str(rec["name"])

    def _check_put_private(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        only_args(args, "collection", "key", "hash", "size")
        name = pv.check_collection_name(args.get("collection"))
        key = pv.check_item_key(args.get("key"))
        digest = args.get("hash")
        if type(digest) is not bytes or len(digest) != pv.HASH_SIZE:
            raise bad(f"argument 'hash' must be {pv.HASH_SIZE} bytes: H(value ‖ salt)")
        size = arg_int(args, "size", max_value=pv.MAX_ITEM_BYTES)
        c = collection(ctx, name)
        _require_listed(ctx, c, "put items into it")
        return {"collection": name, "key": key, "hash": digest, "size": size, "def": c}

    @method(check=_check_put_private)
    def put_private(self, ctx: Context, args: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
        """``collection``, ``key``, ``hash`` (``H(value ‖ salt)``, what the node answered
        when it took the value), ``size`` (of the value). By a member of a listed
        organisation. Returns ``{"version", "purge_height"}`` (0: never purged)."""
        name, key = p["collection"], p["key"]
        head_key = pv.item_head_key(name, key)
        raw = st.get(ctx, head_key, "item head")
        version = 1 if raw is None else int(raw) + 1
        purge = pv.purge_height(ctx.height, int(p["def"]["block_to_live"]))
        item = {
            "collection": name,
            "key": key,
            "version": version,
            "hash": p["hash"],
            "size": p["size"],
            "height": ctx.height,
            "purge_height": purge,
            "tx": ctx.tx_hash,
            "by": ctx.origin,
        }
        st.put(ctx, pv.item_key(name, key, version), item)
        st.put(ctx, head_key, version)
        if purge:
            ctx.set(pv.purge_key(purge, name, key, version), b"\x01")
        ctx.emit(
            "private_put",
            collection=name,
            key=key,
            version=version,
            hash=p["hash"],
            purge_height=purge,
        )
        return {"version": version, "purge_height": purge}

    # -- public queries: definitions and metadata, never a value -------------------------------
    @query
    def collection(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """``name``: the collection's definition (orgs, block_to_live, member_only_read,
        required_peers, max_peers, height, tx, by)."""
        only_args(args, "name")
        return collection(ctx, pv.check_collection_name(args.get("name"), "name"))

    @query
    def private_item(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """``collection``, ``key``, optional ``version`` (default the latest): the item's
        metadata (hash, size, height, purge_height) and whether it is ``purged`` now."""
        only_args(args, "collection", "key", "version")
        name = pv.check_collection_name(args.get("collection"))
        key = pv.check_item_key(args.get("key"))
        collection(ctx, name)
        latest = st.get(ctx, pv.item_head_key(name, key), "item head")
        if latest is None:
            raise NotFound(f"collection {name!r} has no item {key!r}", ErrorCode.RESOURCE_NOT_FOUND)
        n = (
            arg_int(args, "version", min_value=1, max_value=int(latest))
            if args.get("version") is not None
            else int(latest)
        )
        item: dict[str, Any] = st.get(ctx, pv.item_key(name, key, n), "private item")
        return {**item, "latest": int(latest), "purged": pv.is_purged(item, ctx.height)}

    @query
    def purge_due(self, ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
        """``after``, ``through`` (heights), optional ``limit``: ``{"items": [...],
        "through": h}``, the items whose purge height is in ``(after, h]`` (what each node
        deletes at a commit), by height; ``h <= through`` is how far this answer reached
        (at most :data:`MAX_PURGE_SPAN` heights, and the heights whose items fit in
        ``limit``; a height's items are never split), so the caller asks again from ``h``."""
        only_args(args, "after", "through", "limit")
        after = arg_int(args, "after", max_value=2**63)
        through = arg_int(args, "through", max_value=2**63)
        limit = arg_int(args, "limit", min_value=1, max_value=1000) if "limit" in args else 200
        out: list[dict[str, Any]] = []
        done = after
        for height in range(after + 1, min(through, after + MAX_PURGE_SPAN) + 1):
            found = []
            for k, _ in ctx.iter_prefix(pv.PURGE + pv.u64(height)):
                _, name, key, version = pv.parse_purge_key(k)
                item = st.get(ctx, pv.item_key(name, key, version), "private item")
                found.append(
                    {"collection": name, "key": key, "version": version, "hash": item["hash"],
                     "purge_height": height}
                )  # fmt: skip
            if out and len(out) + len(found) > limit:
                break
            out += found
            done = height
        return {"items": out, "through": max(done, after)}


__all__ = ["PrivateCollections", "collection"]
