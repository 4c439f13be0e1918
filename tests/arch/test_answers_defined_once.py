"""Each answer a node gives is defined once, in ``citychain.types.answers``.

The node's ``NodeStatus`` once said ``latest_hash`` where the SDK's said ``latest_block_hash``,
and the SDK's ``SubmitResult.code`` was a string where the node's was an ``ErrorCode``: two
copies of one shape drift. This keeps one: no other module defines a class of these names,
the API's models only describe them (no dataclasses there), and the node-side and SDK-side
names are the very same classes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import citychain.api.service as service
import citychain.mempool as mempool
import citychain.sdk as sdk
import citychain.sdk._types as sdk_types
import citychain.types as types
from citychain.types import answers

SRC = Path(answers.__file__).resolve().parents[1]
HOME = Path(answers.__file__).resolve()
SHAPES = {
    "AccountInfo",
    "BlockInfo",
    "EvidenceInfo",
    "NodeStatus",
    "StateProof",
    "SubmitResult",
    "TxInfo",
    "TxStatus",
    "WithheldTx",
}


def _classes(path: Path) -> list[ast.ClassDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]


def test_no_other_module_defines_an_answer_shape() -> None:
    elsewhere = [
        f"{path.relative_to(SRC)}: class {c.name}"
        for path in sorted(SRC.rglob("*.py"))
        if path.resolve() != HOME
        for c in _classes(path)
        if c.name in SHAPES
    ]
    assert not elsewhere, f"define these once, in citychain/types/answers.py: {elsewhere}"
    assert {c.name for c in _classes(HOME)} == SHAPES


def test_api_models_only_describe() -> None:
    """api/models.py holds pydantic models, no dataclass of its own."""
    path = SRC / "api" / "models.py"
    text = path.read_text(encoding="utf-8")
    assert "dataclass" not in text
    for c in _classes(path):
        bases = {ast.unparse(b) for b in c.bases}
        assert bases & {"BaseModel", "_Model"} or any(
            b.endswith(("Model", "Response")) for b in bases
        ), f"api/models.py: {c.name} is not a pydantic model"


def test_node_api_and_sdk_names_are_the_same_classes() -> None:
    for name in SHAPES:
        one = getattr(answers, name)
        assert getattr(types, name) is one
        assert getattr(sdk_types, name) is one
        if hasattr(service, name):
            assert getattr(service, name) is one
        if hasattr(sdk, name):
            assert getattr(sdk, name) is one
    assert mempool.AddResult is answers.SubmitResult
