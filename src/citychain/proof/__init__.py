"""Proofs anyone can check: ICS-23 commitment proofs for state, simple Merkle proofs for lists.

Pure code with no I/O and no node dependencies: the SDK and light clients use it as is.
"""
