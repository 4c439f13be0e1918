"""The build: the package as ``pyproject.toml`` describes it, and a few hot modules compiled.

The modules in :data:`COMPILED` are plain, fully typed Python (``mypy --strict``) that every
transaction and every block runs through many times: the canonical CBOR scan, and the state
tree's pages and updates. Where a C compiler and Python's headers are present, the install
compiles them with mypyc (the compiler the mypy project builds mypy and black with; no other
code of ours is involved) into C extensions beside their sources. Python imports an
extension before the source of the same name. Measured in ``bench/RESULTS.md``: a
transaction's decode ~2x, the state tree's block updates ~1.2-1.5x.

One extension is C of our own (:data:`NATIVE`): ``crypto/_ed25519_batch.c``, a loop that
checks a whole share of a batch of Ed25519 signatures with libsodium while Python's interpreter
lock is released once (its header says why no library could do it; measured in
``bench/RESULTS.md``: one validator ~1.5x the transfers).

Everything works without them: where there is no compiler, a build failure, or
``CITYCHAIN_PURE=1`` at install time, no extension is built and the sources run as they are
(for the C loop: one libsodium call a signature, through PyNaCl).
``CITYCHAIN_PURE=1`` at run time runs the sources even where extensions exist
(``citychain/__init__.py``): to profile with py-spy, or to compare the two.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup

#: The modules compiled with mypyc, as paths; ``citychain.COMPILED`` names the same modules
#: (tests/test_compiled.py holds the two lists equal).
COMPILED = [
    "src/citychain/codec.py",
    "src/citychain/state/_nodes.py",
    "src/citychain/state/_smt.py",
]


#: C extensions of our own, as paths: code that has no Python twin because what it does
#: cannot be done from Python (``citychain.NATIVE`` names the same modules; each source says
#: why it exists). Built where a C compiler and Python's headers are, like the modules above;
#: without one, or with ``CITYCHAIN_PURE=1``, the Python path they stand beside runs.
NATIVE = ["src/citychain/crypto/_ed25519_batch.c"]


def _native() -> list[Extension]:
    if os.environ.get("CITYCHAIN_PURE") == "1":
        return []
    return [
        Extension(
            ".".join(path.removeprefix("src/").removesuffix(".c").split("/")),
            [path],
            optional=True,  # no compiler or no Python headers: setuptools warns, builds the rest
        )
        for path in NATIVE
    ]


def _compiled() -> list[Extension]:
    if os.environ.get("CITYCHAIN_PURE") == "1":
        return []
    try:
        from mypyc.build import mypycify

        extensions = mypycify(
            [
                # A first install builds before it installs the dependencies: the modules'
                # other imports (cbor2, nacl, ...) may be missing and are typed as Any, as
                # mypyc allows. The strict lints on Any are for the tests' mypy run, which
                # sees them all (tests/arch/test_quality.py), not for the build.
                "--ignore-missing-imports",
                "--follow-imports=silent",
                "--no-warn-return-any",
                "--no-warn-unused-ignores",
                "--no-warn-unreachable",
                "--allow-untyped-calls",
                "--allow-subclassing-any",
                *COMPILED,
            ],
            opt_level="3",
            group_name="citychain",
        )
    except (Exception, SystemExit) as exc:  # mypyc refused: the sources run as they are
        print(f"citychain: not compiling {COMPILED} ({exc!r}); pure Python", file=sys.stderr)
        return []
    for extension in extensions:
        # No compiler or no Python headers: setuptools warns and builds the rest.
        extension.optional = True
    return list(extensions)


setup(ext_modules=_compiled() + _native())
