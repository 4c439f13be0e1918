"""Authenticated state: a versioned sparse Merkle tree over RocksDB, with ICS-23 proofs."""
