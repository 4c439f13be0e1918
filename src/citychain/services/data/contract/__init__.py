"""The ``data`` system contract: the catalogue of government data resources, access requests
and grants, and the audit trail of every request, decision, revocation and download.

Theory of operation
-------------------
**What is on chain.** The catalogue (public by nature: what a department holds, not the data),
and for each version of a resource only hashes and sizes: the blob store's manifest id, the
hash of the plaintext and of the ciphertext, the cipher, the data key *wrapped* for each
reader (ciphertext), and the *subject tags* of the people its records are about
(``sha256("citychain/data/subject\\0" + DID)``,
:func:`~citychain.services.data.shapes.subject_tag`).
Purposes, reasons and legal bases are texts the departments write; no personal data.
The transactions that carry them, and the versions' subject tags, are *private calls*
(``Data.private_methods``): the node's API shows them whole only to their signers and to
members in good standing, withholds them from anyone else, and streams their events only to
subscriptions signed by those (:mod:`citychain.api._withhold`), so the blocks say no more
than the signed reads below.

**Who is who.** The contract asks ``gov.member`` about the sender. A *department* is a member
in good standing of an organisation; *provider actions* (register, update, retire, add a
version, wrap a key, revoke) need a member of the resource's ``provider`` organisation
(``not_provider``). A *citizen* is an account that is no member: its key is the Ed25519 key of
its ``did:key``, and it acts only for records about itself: the ``subject`` it names must be
``subject_tag(did:key of the signing key)`` and some version of the resource must list that tag
(``not_subject``). The executor lets non-members call exactly ``data.request_access`` and
``data.record_access`` (:data:`citychain.execution.access.NON_MEMBER_METHODS`); every other
method needs a member, as on any contract, under the default policy (any member) or one set
by governance.

**Resources.** ``register_resource`` writes revision 1 and the search indexes (provider,
theme, keyword, sharing class); ``update_resource`` writes the next revision (same code and
provider) and moves the indexes; ``retire_resource`` writes a last revision and leaves the
indexes. Revisions are never overwritten (``history``). ``add_version`` appends version
1, 2, ... with its block time and height; the API sends it only after every chunk is stored,
so a version in the catalogue can be downloaded.

**Requests and grants.** One state table for a request, one for a grant; nothing else moves
them, and every move is one transaction, an event and an audit entry:

============  ===========================  ======================================  ==========
state         input                        condition                               next
============  ===========================  ======================================  ==========
(none)        ``request_access``           resource live; sharing unconditional    granted
(none)        ``request_access``           sharing none (recorded, not an error)   refused
(none)        ``request_access``           sharing conditional                     pending
pending       ``decide(approve=true)``     signer is a named approver; ``until``    granted
                                           not passed
pending       ``decide(approve=false)``    signer is a named approver; a reason    refused
granted,      anything                     refused: ``request_decided``            same
refused
============  ===========================  ======================================  ==========

A granted request creates a grant, ``active`` from the block's time until ``until``
(exclusive):

============  ===========================  ======================================  ==========
state         input                        condition                               next
============  ===========================  ======================================  ==========
active        ``record_access``            the grantee; version exists; a          active
                                           department grantee still a member of
                                           its organisation
active        block time >= ``until``      (read off the block time, not written)  expired
active,       ``revoke``                   a member of the provider                revoked
expired
expired       ``record_access``            refused: ``grant_expired``              expired
revoked       ``record_access``            refused: ``grant_revoked``              revoked
revoked       ``revoke``                   refused: ``grant_revoked``              revoked
============  ===========================  ======================================  ==========

``record_access`` by anyone but the grantee is ``wrong_grantee``; an unknown grant id
``no_grant``. The API demands a recorded access (recent, by the same signer, read with the
``access`` query) before it streams a download: that is the chain's check at every download.

**Keys.** A version's data key is wrapped for each reader at ``add_version`` (``wraps``) or
later by ``wrap_key``. A wrap is accepted for an address that holds an active grant on the
resource, or that is a member of the provider; for one whose grant was revoked (and that holds
no other active grant) it is refused with ``grant_revoked``, so a revoked reader gets no key to
later versions; for anyone else ``no_grant``. ``wrap_key`` is taken for a retired resource
too: a grant given before the retirement still opens its versions.

**Audit.** Each request, grant, refusal, revocation and download appends an entry to one
sequence (``au/``), indexed by resource and by every subject tag concerned: the version's
subjects for a download, the request's subject for the rest. The ``accesses(subject)`` query is
the citizen's view: which department, which resource and version, when, for what stated
purpose.

**Reads.** ``resource``, ``history``, ``versions`` and ``search`` are public. The queries in
:data:`PRIVATE_QUERIES` are not: the API answers them only to a reader proven by a signed
request, after asking ``can_read(reader, query, args)``: a member of the provider or an
``auditor`` of any organisation for a resource's grants, requests and audit; the holder for its
own grant, request or access; the citizen whose did:key has the tag (or an auditor) for
``accesses`` and ``records``; only the grantee for ``wrapped_key``.

**Private data collections** (:mod:`._private`): ``define_collection`` names the
organisations whose nodes hold a collection's values; ``put_private`` anchors only a value's
salted hash, size and purge height. The values never enter a transaction; the nodes keep,
push and purge them (:mod:`citychain.node.private_data`).

**Admission.** Every method's refusals are its admission check, so the mempool refuses at once
with the code the receipt would carry; a check that depends on the block's time refuses only
for a time that has passed (expiry), never for one not yet come.
"""

from citychain.services.data.contract._contract import PRIVATE_QUERIES as PRIVATE_QUERIES
from citychain.services.data.contract._contract import Data as Data


def system_contract() -> Data:
    """The contract a node registers for this service (see :mod:`citychain.registry`)."""
    return Data()


__all__ = ["PRIVATE_QUERIES", "Data", "system_contract"]
