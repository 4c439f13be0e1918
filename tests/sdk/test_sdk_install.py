"""The SDK works where only the base dependencies are installed (no ``[node]`` extra)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

NODE_ONLY = [
    "fastapi",
    "starlette",
    "uvicorn",
    "rocksdict",
    "typer",
    "click",
    "rich",
    "prometheus_client",
    "orjson",
    "cryptography",
    "pydantic",
]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )


def test_importing_the_sdk_loads_no_node_dependency() -> None:
    proc = _run(
        f"""
        import sys
        import citychain.sdk
        from citychain.sdk import Client, AsyncClient, VerifiedValue  # the public names
        loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({NODE_ONLY!r}))
        print(",".join(loaded))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"citychain.sdk imported: {proc.stdout}"


def test_the_sdk_signs_and_verifies_with_node_packages_unimportable() -> None:
    # Make every node-only package unimportable, as in an install without the [node] extra,
    # then build, sign and submit a transaction through a mock transport.
    proc = _run(
        f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in set({NODE_ONLY!r}):
                    raise ImportError(f"{{name}} is not installed (simulated)")
                return None
        sys.meta_path.insert(0, Block())

        import httpx
        from citychain.crypto import ED25519, Signer
        from citychain.sdk import Client
        from citychain.types import Transaction

        signer = Signer.generate(ED25519)
        tx = Transaction.create(signer, chain_id="c", nonce=0, contract="token",
                                method="transfer", args={{"to": bytes(20), "amount": 1}})
        seen = []
        def handle(request):
            seen.append(request.content)
            return httpx.Response(202, json={{"hash": tx.hash.hex(), "status": "pending"}})
        with Client("http://x", transport=httpx.MockTransport(handle)) as c:
            assert c.submit(tx) == tx.hash
        assert seen == [tx.encode()]
        print("ok")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
