"""The data directory: a catalogue of government data resources (DCAT 3 with the fields of
China's government data resource catalogue), access requests and grants decided on chain,
and the audit trail a citizen can read about their own records.

Parts: :mod:`.shapes` (records, limits, the subject tag, DCAT JSON-LD), :mod:`.contract`
(the ``data`` system contract and its theory of operation), :mod:`.sdk` (``client.data``).
"""
