"""Durable storage: the RocksDB key-value store, the block store and its indexes."""
