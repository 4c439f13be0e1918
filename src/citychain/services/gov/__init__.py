"""``gov``: the chain's organisations, members, roles, access policies and proposals.

``shapes`` (proposal kinds and their parameters), ``contract`` (the system contract and its
proposal state machine), ``sdk`` (``client.gov``), ``router`` (``/v1/gov/...``) and ``cli``
(``citychain gov ...``). Nothing is imported here, so loading one part loads no other.
"""
