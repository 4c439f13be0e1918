"""``token``: the chain's fungible token (balances, issuers, supply).

``shapes`` (the state layout, :func:`~citychain.services.token.shapes.balance_key`),
``contract`` (the system contract), ``sdk`` (``client.token``) and ``cli`` (``tx transfer``,
``tx mint``, ``query balance``). Nothing is imported here, so loading one part loads no other.
"""
