"""Agreeing on blocks. Today: a single validator (:class:`SoloEngine`); the BFT engine
(Tendermint) replaces it behind the same :class:`ConsensusEngine` interface without touching
execution or storage."""

from citychain.consensus.interface import ConsensusEngine as ConsensusEngine
from citychain.consensus.interface import ConsensusStatus as ConsensusStatus
from citychain.consensus.interface import OnCommit as OnCommit
from citychain.consensus.solo import SoloEngine as SoloEngine

__all__ = ["ConsensusEngine", "ConsensusStatus", "OnCommit", "SoloEngine"]
