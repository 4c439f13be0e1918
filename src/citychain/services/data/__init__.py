"""The data directory: a catalogue of government data resources (DCAT 3 with the fields of
China's government data resource catalogue), access requests and grants decided on chain,
encrypted data off chain, private data collections, and the audit trail a citizen can read
about their own records.

Parts:

* :mod:`.shapes`: records, limits, the subject tag, the state layout, DCAT 3 JSON-LD;
* :mod:`.contract`: the ``data`` system contract and its theory of operation (catalogue,
  requests and grants, audit; private collections in ``contract/_private.py``);
* :mod:`.sdk`: ``client.data`` (transactions, queries, and in ``sdk/_transfer.py`` the
  client-side sealing, uploads, downloads, verification and signed reads);
* :mod:`.router`: ``/v1/data/...`` (public catalogue, RFC 9421 signed reads, chunk uploads,
  downloads under a recorded access; the ``add_version`` admission gate);
* :mod:`.cli`: ``citychain data ...``.

The ciphertext itself lives in the node's blob store (:mod:`citychain.blobs`), sealed by
:mod:`citychain.crypto.envelope`; private collection values in the node's side store.
"""
