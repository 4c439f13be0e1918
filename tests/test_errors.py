"""The one exceptions tree: every code has a class and an HTTP status, decided once.

A code added to :class:`ErrorCode` without a row in ``citychain.errors``'s table fails here,
and the failure names the code. The rest holds what users rely on: the SDK rebuilds a node's
``{"code", "message"}`` answer as the code's class, the API answers each code with its status
(hiding the node's own faults behind a generic 500), no exception class lives outside the
tree, and the SDK can import the tree without the node's extras.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from citychain import errors
from citychain.api._errors import INTERNAL_MESSAGE, citychain_error_response
from citychain.errors import (
    CLASS_BY_CODE,
    HTTP_STATUS_BY_CODE,
    CitychainError,
    ErrorCode,
    ExecutionFailure,
    InternalError,
    InvalidInput,
    NotFound,
    Unavailable,
)
from citychain.sdk import error_from

SRC = Path(__file__).resolve().parents[1] / "src" / "citychain"
ERRORS_PY = SRC / "errors.py"
CODES = list(ErrorCode)


@pytest.mark.parametrize("code", CODES, ids=str)
def test_every_code_has_a_class_and_a_status(code: ErrorCode) -> None:
    missing = [
        what
        for what, table in (("class", CLASS_BY_CODE), ("HTTP status", HTTP_STATUS_BY_CODE))
        if code not in table
    ]
    assert not missing, (
        f"ErrorCode.{code.name} ({code.value!r}) has no {' and no '.join(missing)}: add its row "
        "to the table at the end of citychain/errors.py"
    )


def test_each_code_has_exactly_one_row() -> None:
    """A dict literal keeps the last of two equal keys silently; the source must not have two."""
    tree = ast.parse(ERRORS_PY.read_text())
    rows = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and node.target.id == "_BY_CODE"
    )
    assert isinstance(rows, ast.Dict)
    keys = Counter(ast.unparse(k) for k in rows.keys if k is not None)
    twice = sorted(k for k, n in keys.items() if n > 1)
    assert not twice, f"codes with more than one row in citychain/errors.py: {twice}"
    assert set(keys) == {f"ErrorCode.{c.name}" for c in CODES}


def _statuses_for(cls: type[CitychainError]) -> set[int]:
    """What each branch of the tree may be answered with."""
    if issubclass(cls, NotFound):
        return {404, 410}
    if issubclass(cls, Unavailable):
        return {429, 503}
    if issubclass(cls, InvalidInput | ExecutionFailure):
        return set(range(400, 500)) - {429}
    return {500}  # proofs, keystores, the signer, internal faults: the node's, not the caller's


@pytest.mark.parametrize("code", CODES, ids=str)
def test_a_codes_status_agrees_with_its_class(code: ErrorCode) -> None:
    cls, status = CLASS_BY_CODE[code], HTTP_STATUS_BY_CODE[code]
    assert status in _statuses_for(cls), (
        f"ErrorCode.{code.name} is raised as {cls.__name__} but answered {status}"
    )


@pytest.mark.parametrize("code", CODES, ids=str)
def test_the_sdk_rebuilds_each_code_as_its_class(code: ErrorCode) -> None:
    exc = error_from(code.value, "what the node said")
    assert type(exc) is CLASS_BY_CODE[code]
    assert (exc.code, exc.message) == (code, "what the node said")


def test_the_sdk_keeps_a_code_it_does_not_know_in_the_message() -> None:
    exc = error_from("from_a_newer_node", "new words")
    assert type(exc) is CitychainError and exc.code is ErrorCode.INTERNAL
    assert exc.message == "new words (node error code 'from_a_newer_node')"


@pytest.mark.parametrize("code", CODES, ids=str)
def test_the_api_answers_each_code_with_its_status_and_body(
    code: ErrorCode, caplog: pytest.LogCaptureFixture
) -> None:
    exc = CLASS_BY_CODE[code]("the refusal in words", code)
    response = citychain_error_response(exc, "GET /test")
    status = HTTP_STATUS_BY_CODE[code]
    assert response.status_code == status
    body = json.loads(bytes(response.body))
    if status >= 500 and status != 503:
        # The node's own fault: logged with the words, answered without them.
        assert body == {"code": "internal", "message": INTERNAL_MESSAGE}
        assert "the refusal in words" in caplog.text
    else:
        assert body == {"code": code.value, "message": "the refusal in words"}
        retry = response.headers.get("retry-after")
        assert retry == ("1" if status in (429, 503) else None)


def test_the_api_answers_by_code_not_by_class() -> None:
    """A refused transaction carries the contract's code; the code decides the status."""
    for code, status in [
        (ErrorCode.NOT_MEMBER, 403),
        (ErrorCode.UNKNOWN_CONTRACT, 404),
        (ErrorCode.MEMPOOL_FULL, 429),
        (ErrorCode.TOO_LARGE, 413),
    ]:
        assert citychain_error_response(errors.TxRejected("x", code), "w").status_code == status
    hidden = citychain_error_response(InternalError("disk on fire"), "w")
    assert hidden.status_code == 500 and b"disk on fire" not in bytes(hidden.body)


def _exception_classes_outside_the_tree() -> list[str]:
    """Public exception classes (any base named like one) defined anywhere but errors.py."""
    tree_names = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    } | {"Exception", "BaseException", "ValueError", "RuntimeError", "OSError", "TypeError"}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path == ERRORS_PY:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                continue  # a module's private signal never leaves it
            bases = {ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases}
            if bases & tree_names:
                found.append(f"{path.relative_to(SRC.parent)}: {node.name}({', '.join(bases)})")
    return found


def test_every_exception_class_is_in_the_one_tree() -> None:
    outside = _exception_classes_outside_the_tree()
    assert not outside, "define these in citychain/errors.py:\n" + "\n".join(outside)


def test_the_tree_imports_nothing_but_the_standard_library() -> None:
    """The SDK (installed without the node's extras) and every layer import it."""
    code = (
        "import sys; before = set(sys.modules); import citychain.errors;"
        "print('\\n'.join(sorted(set(sys.modules) - before)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m.split(".")[0] for m in proc.stdout.split()}
    foreign = sorted(loaded - set(sys.stdlib_module_names) - {"citychain"})
    assert not foreign, f"citychain.errors imports {foreign}"
    ours = sorted(m for m in proc.stdout.split() if m.startswith("citychain."))
    assert ours == ["citychain.errors"], f"citychain.errors imports other parts: {ours}"
