"""The `citychain` command line: keys, transactions, queries, node lifecycle, benchmarks."""
