"""``identity``: decentralised identifiers (``did:citychain``), trusted issuers, verifiable
credentials and their status lists.

``shapes`` (identifier syntax, Multikey encoding), ``contract`` (DID documents and their
versions, the trusted-issuer registry, status lists anchored on chain), ``sdk`` (credential
issuance and verification, SD-JWT, presentations, the holder's wallet), ``router`` (DID
resolution over HTTP, the VC-API endpoints, the public verification page) and ``cli``
(``citychain did|vc|wallet ...``). Nothing is imported here, so loading one part loads no other.
"""
