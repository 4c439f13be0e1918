"""Agreeing on blocks, behind one :class:`ConsensusEngine` interface.

* ``TendermintEngine`` (``tendermint.py``; import it from there, it needs p2p) drives the
  pure Tendermint state machine (``machine.py``, with ``votes.py`` and ``proposer.py``) over
  p2p, with a write-ahead log (``wal.py``), a signer that never double-signs
  (``privval.py``), evidence (``evidence.py``) and the wire messages (``messages.py``): the
  engine of every node with ``[p2p] org_id`` set.
* :class:`SoloEngine` (``solo.py``): a single validator without a network (``citychain
  init`` and ``start --demo``).
"""

from citychain.consensus.interface import ConsensusEngine as ConsensusEngine
from citychain.consensus.interface import ConsensusStatus as ConsensusStatus
from citychain.consensus.interface import OnCommit as OnCommit
from citychain.consensus.solo import SoloEngine as SoloEngine

__all__ = ["ConsensusEngine", "ConsensusStatus", "OnCommit", "SoloEngine"]
