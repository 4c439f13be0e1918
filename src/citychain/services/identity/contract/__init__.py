"""The ``identity`` system contract: ``did:citychain`` DIDs, the trusted-issuer registry and
status lists anchored on chain.

Theory of operation
-------------------
**What is on chain.** Only what is public by nature: the DID documents of issuers and
organisations (keys and service endpoints), which DIDs may issue which credential types, and
status-list bitstrings (whose entries are random indexes, so a bit says nothing about whom
or when). Citizens' DIDs are ``did:key`` and their credentials stay with them.

**DIDs** (the method specification is ``docs/did-method.md``). ``create_did(document)``
derives the DID from the creating transaction: ``did:citychain:`` + base58btc of the first
16 bytes of its hash, so it is unique (the nonce makes every transaction hash unique), known
to the sender before sending, and not something anyone else can claim first. Every
operation is one transaction of this contract and appends one *version*::

    did/<16 id bytes>                     [versions, created ms, created height]
    dv/<16 id bytes><version, 4 B BE>     {"doc": record or None (deactivated), "op",
                                           "t": block time ms, "h": height, "tx": tx hash,
                                           "by": signing public key}

The record is the document reduced to canonical data (:mod:`..shapes._document`); the JSON
is rebuilt by the ``resolve`` query. Versions are never overwritten, so ``resolve`` answers
for any ``version_id``, or for a ``version_time`` by binary search over the versions' block
times (which never decrease: they come from the headers).

**Who may change a DID.** The key that signs the transaction must be in
``capabilityInvocation`` of one of the DID's controllers, as they are *now*: the DID's
``controller`` property if it has one, else the DID itself. A ``did:citychain`` controller
acts with the keys of its own current document (one level: its controllers' controllers do
not count), a ``did:key`` controller with its key; a deactivated or unknown controller has
none. A create is checked the same way against the new document, so nobody creates a DID
for keys they do not hold. Refusals: ``not_controller``; ``key_rotated`` when the key was in
an earlier version and was rotated away; ``did_deactivated``; ``did_not_found``;
``version_conflict`` when the update names a version that is no longer the latest;
``invalid_did_document`` naming the property. A document that no key could ever change
again is refused (deactivate instead).

=============  ===================  ============================================  =========
state          input                condition                                     next
=============  ===================  ============================================  =========
(none)         ``create_did``       document valid; signer controls it            active v1
active vN      ``update_did``       signer is a current controller key;           active
                                    ``version_id`` (if given) == N                vN+1
active vN      ``deactivate_did``   same                                          deact.
deactivated    anything             refused: ``did_deactivated``                  deact.
=============  ===================  ============================================  =========

**Trusted issuers.** ``trust_issuer(issuer, type, name)`` and ``untrust_issuer(issuer, type,
reason)`` are methods of this contract governed by access policies
(``identity.trust_issuer`` and ``identity.untrust_issuer``, or ``identity.*``), set in
genesis or by a ``gov`` ``set_policy`` proposal. The executor checks the transaction's
signers (sender and endorsers) against the policy, as for any method; this contract adds
that the chain is not in ``open`` identity mode and that a policy was actually set (the
default "any member" would let one member trust anyone), else ``policy_required``. Why
methods with a policy rather than a ``gov`` proposal kind: the policy is the same
governance (set and changed by proposals, evaluated per organisation), a ``MAJORITY`` policy
is met by one endorsed transaction instead of a proposal, votes and an execute, and the
registry stays inside this service. State::

    ti/<type>\\0<issuer DID>    {"issuer", "type", "name", "since", "height", "tx"}
    tih/<seq, 8 B BE>          {"seq", "action": trust|untrust, "issuer", "type", "name",
                                "time", "height", "tx", "by": sender address, ...}
    tip/<type>\\0<issuer DID>   [[since, until], ...]: past trust periods, so ``is_trusted``
                               answers for a past time too (a credential's ``validFrom``)

**Status lists** (:mod:`._status`). ``register_status_list(issuer, name, purpose, size)``
by a controller of the issuer's DID; ``set_status(list_id, set, clear)`` changes entries by
transaction. State holds the bitstring in 1 KiB chunks (absent = zeros), the SHA-256 of the
uncompressed bitstring, and each change's set and cleared indexes (with the hash after it),
so ``status(..., at=...)`` reads an entry as it was at a past time. A revocation, once set,
is never cleared (``revocation_final``). ``publish_status_credential(list_id, credential)``
(or ``set_status``'s ``credential``) keeps the list's ``BitstringStatusListCredential`` as the
issuer signed it, once its bits are checked to be the list's, for verifiers outside the chain
(the node serves it as the DID URL ``<issuer>/status/<name>``); the ``status_credential``
query says whether it is still current. The same calls take ``token``: the list's IETF Status
List Token (JWT) for SD-JWT VC verifiers, checked the same way (its ``lst`` is the list's
bits in the token layout) and kept beside it (``status_token``).

**Admission.** Every method's refusals are its admission check (``@method(check=...)``), so
the mempool refuses at once with the code the receipt would carry.
"""

from citychain.services.identity.contract._contract import Identity as Identity
from citychain.services.identity.shapes._document import CONTEXT as CONTEXT
from citychain.services.identity.shapes._document import to_json as to_json
from citychain.services.identity.shapes._document import to_record as to_record


def system_contract() -> Identity:
    """The contract a node registers for this service (see :mod:`citychain.registry`)."""
    return Identity()


__all__ = ["CONTEXT", "Identity", "system_contract", "to_json", "to_record"]
