"""Pure data: immutable typed values with one canonical encoding each."""

from citychain.types.answers import AccountInfo as AccountInfo
from citychain.types.answers import BlockInfo as BlockInfo
from citychain.types.answers import EvidenceInfo as EvidenceInfo
from citychain.types.answers import NodeStatus as NodeStatus
from citychain.types.answers import StateProof as StateProof
from citychain.types.answers import SubmitResult as SubmitResult
from citychain.types.answers import TxInfo as TxInfo
from citychain.types.answers import TxStatus as TxStatus
from citychain.types.answers import WithheldTx as WithheldTx
from citychain.types.block import Block as Block
from citychain.types.block import Commit as Commit
from citychain.types.block import CommitSig as CommitSig
from citychain.types.block import Header as Header
from citychain.types.block import evidence_root as evidence_root
from citychain.types.block import tx_root as tx_root
from citychain.types.evidence import DuplicateVoteEvidence as DuplicateVoteEvidence
from citychain.types.receipt import CommittedEvent as CommittedEvent
from citychain.types.receipt import Event as Event
from citychain.types.receipt import Receipt as Receipt
from citychain.types.tx import Transaction as Transaction
from citychain.types.validator import Validator as Validator
from citychain.types.validator import ValidatorSet as ValidatorSet
from citychain.types.vote import NIL as NIL
from citychain.types.vote import Vote as Vote
from citychain.types.vote import VoteType as VoteType
from citychain.types.vote import vote_signing_bytes as vote_signing_bytes

__all__ = [
    "NIL",
    "AccountInfo",
    "Block",
    "BlockInfo",
    "Commit",
    "CommitSig",
    "CommittedEvent",
    "DuplicateVoteEvidence",
    "Event",
    "EvidenceInfo",
    "Header",
    "NodeStatus",
    "Receipt",
    "StateProof",
    "SubmitResult",
    "Transaction",
    "TxInfo",
    "TxStatus",
    "Validator",
    "ValidatorSet",
    "Vote",
    "VoteType",
    "WithheldTx",
    "evidence_root",
    "tx_root",
    "vote_signing_bytes",
]
