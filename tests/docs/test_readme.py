"""Every command block of README.md runs, against real nodes, so the README cannot drift.

Theory of operation
-------------------
README.md is cut into its fenced blocks, each with the section (``##`` heading) it is in.

* A ``bash`` or ``python`` block is something a reader pastes: it runs, unless the line right
  before it (blank lines aside) is a marker ``<!-- not run: <reason> -->``. A marker without a
  reason fails the test, and so does a plain ````` block that holds commands (give it a
  language). Blocks of other languages (json, toml, text, plain output) are not commands.
* Blocks run in *families*, in README order within each. A family has one temporary working
  directory (with ``.venv`` a symlink to this interpreter's prefix, so ``.venv/bin/citychain``
  is the checkout under test, while a bare ``citychain`` is not on PATH, as after the README's
  install) and the node or network its sections start:

  - ``demo``: the sections of :data:`BACKGROUND`, whose prose says to run a node "in another
    shell" (``citychain start --demo``): the harness starts it in the background first, and
    stops it with SIGTERM at the end (it must exit 0, as the README says);
  - ``net``: every other section, against the network of the README's first command (``net up
    ...``, read from that block), started (or restarted, when a section ended with ``net
    down``) before each section's first block;
  - a block that starts its own network (its first command is ``net up``) runs alone, in a
    fresh directory (the governance worked example).

  Every network is stopped with ``net down`` afterwards.
* Each bash block runs in ``bash -eo pipefail`` (a failing command fails the test, with the
  block's line and output); what it exports carries to the next blocks of the same section, as
  in the shell a reader pastes into.
* Placeholders a reader fills in (``<bob's address>``, ``<key hex>``, ...) are replaced from
  :data:`PLACEHOLDERS`, computed from the family's chain; an unknown one fails the test.
* Ports: the README's (API 26657 for the demo; 27000 + k for a network) are mapped to free
  ports per family, so the suite neither collides with a network a developer runs nor with
  parallel tests; ``net up`` of a new network gets ``--base-port``, ``start --demo`` ``--port``.
* :data:`EXPECT` checks a few facts in the output of the blocks that hold some command (that
  ``gov show 1`` shows the add_org proposal, that a balance's proof verified, ...).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from ports import PortBlocks  # type: ignore[import-not-found]

from citychain.crypto import get_suite
from citychain.services.token.shapes import balance_key

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

#: Sections whose node runs "in another shell": the harness starts it in the background.
BACKGROUND = {"Trying it": ".venv/bin/citychain start --demo"}
#: Where each family's keys are (placeholders are computed from them).
KEYS = {"demo": ".citychain/node/keys", "net": ".citychain-net/keys"}
#: What a reader fills in, computed from the family's chain (bob's account).
PLACEHOLDERS: dict[str, Callable[[bytes], str]] = {
    "<bob's address>": lambda bob: bob.hex(),
    "<address>": lambda bob: bob.hex(),
    "<key hex>": lambda bob: balance_key(bob).hex(),
}
#: (a command in a block, what the block's output must then contain).
EXPECT = [
    ("citychain query balance", "proof verified against header"),
    ("citychain query state", "proof verified against header"),
    ("citychain node replay", "replay ok"),
    ("citychain tx transfer", " ok in block "),
    ("citychain bench transfers", "bench transfers: "),
    ("/credentials/verify", "True Fuzhou Market Regulation Bureau"),
    ("citychain vc issue subjects.jsonl", "issued by Fuzhou Market Regulation Bureau"),
    ("citychain wallet present", "true"),
    ("/credentials/issue -H", "eddsa-jcs-2022"),
    ("citychain did resolve", "proven at height"),
    ("citychain vc verify --offline", "checked offline against genesis"),
    ("/bundles/verify --data-binary", '{"verified":true,"height":'),
    ("citychain gov propose set_params", "(set_params) is open until height"),
    ("citychain gov show 1", "still open: needs 2 of 3 organisations, approved by org1"),
    ("citychain gov execute 1", "proposal 1 executed: org=org4"),
    ("citychain gov orgs", "Parks Department"),
    ("citychain gov history --proposal 1", "execute"),
    ("/v1/gov/proposals/1", '"status": "open"'),
    ("node.get_state(balance_key(bob_address))", "bob has "),
    ("print(node.gov.proposal(pid).needs)", "approved by org1, org2"),
    ('data.verify("received.csv")', "proof verified: True"),
    ('data.verify("received.csv")', "citizen's view: [('download', 'org2')]"),
    ("node.tx(request_tx).withheld", "anyone sees: WithheldTx(hash="),
    ("node.tx(request_tx).withheld", "the requester sees: bus stops near clinics"),
    ("/v1/data/resources/301001/000001/audit", "signature_missing"),
    ("/v1/data/catalogue", "Catalog of "),
    ("citychain data verify got.csv", "proof verified against header"),
    ("citychain data audit 301002/000001", "download"),
    ("org2_node.data.get_private(", "b'stop 14: 08:05, 08:35'"),
]
#: Upper bound for one block (a benchmark included); a block that hangs fails, with its output.
BLOCK_TIMEOUT = 240.0
#: Programs besides citychain that README blocks use (a machine running the suite needs them).
TOOLS = ("curl", "jq")
COMMAND_LANGS = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}
_MARKER = re.compile(r"<!--\s*not run\b:?(.*?)-->")
_LOOKS_LIKE_A_COMMAND = re.compile(
    r"^\s*(\$ |\.venv/bin/|citychain |curl |export |python3?(\.\d+)? |pip |bash )"
)
_PLACEHOLDER = re.compile(r"<[A-Za-z][A-Za-z0-9' _-]*>")
_OWN_NETWORK = re.compile(r"^\.venv/bin/citychain net up\b")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    section: str  # the "## " heading it is under
    heading: str  # the nearest heading of any level
    marker: str | None  # the reason of a "not run" marker ("" if it gives none)

    @property
    def kind(self) -> str | None:
        return COMMAND_LANGS.get(self.lang)

    @property
    def runs(self) -> bool:
        return self.kind is not None and self.marker is None

    def commands(self) -> list[str]:
        return [
            ln for ln in self.text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
        ]

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.lang or 'plain'} block in '{self.heading}')"


def parse(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    section = heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            title = line.lstrip("#").strip()
            heading = title
            if line.startswith("## "):
                section = title
        stripped = line.strip()
        if stripped.startswith("```"):
            lang = stripped[3:].strip().split(" ")[0].lower()
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            m = _MARKER.search(lines[j]) if j >= 0 else None
            marker = m.group(1).strip() if m else None
            end = i + 1
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            body = "\n".join(lines[i + 1 : end])
            blocks.append(Block(i + 1, lang, body, section, heading, marker))
            i = end + 1
            continue
        i += 1
    return blocks


BLOCKS = parse(README.read_text(encoding="utf-8"))


# -- families -------------------------------------------------------------------------------------
@dataclass
class Family:
    name: str
    setup: str  # "demo", "net" or "own" (the block starts its own network)
    blocks: list[Block] = field(default_factory=list)


def _first_command(block: Block) -> str:
    cmds = block.commands()
    return cmds[0].strip() if cmds else ""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def families(blocks: list[Block]) -> list[Family]:
    out: dict[str, Family] = {}
    for b in blocks:
        if not b.runs:
            continue
        if b.kind == "bash" and _OWN_NETWORK.match(_first_command(b)):
            name, setup = f"own-{_slug(b.heading)}", "own"
        elif b.section in BACKGROUND:
            name, setup = "demo", "demo"
        else:
            name, setup = "net", "net"
        out.setdefault(name, Family(name, setup)).blocks.append(b)
    return sorted(out.values(), key=lambda f: f.blocks[0].line)


FAMILIES = families(BLOCKS)


def first_net_up() -> str:
    """The ``net up`` of the README's first command: the network of the ``net`` family."""
    first = next(b for b in BLOCKS if b.kind == "bash")
    m = re.search(r"\.venv/bin/citychain net up[^&|;\n]*", first.text)
    assert m, f"{first} no longer starts a network with .venv/bin/citychain net up"
    return m.group(0).strip()


# -- static checks ------------------------------------------------------------------------------
def test_every_command_block_runs_or_says_why_not() -> None:
    problems = []
    for b in BLOCKS:
        if b.kind is not None and b.marker == "":
            problems.append(f"{b}: the 'not run' marker gives no reason (<!-- not run: why -->)")
        if b.kind is None and b.marker is not None:
            problems.append(f"{b}: a 'not run' marker on a block that is not a command")
        if b.lang == "" and any(_LOOKS_LIKE_A_COMMAND.match(ln) for ln in b.text.splitlines()):
            problems.append(f"{b}: a plain block that holds commands: give it a language (bash)")
        if b.runs and b.kind == "bash":
            unknown = sorted(set(_PLACEHOLDER.findall(b.text)) - set(PLACEHOLDERS))
            if unknown:
                problems.append(f"{b}: placeholders {unknown}: add them to PLACEHOLDERS")
    assert not problems, "\n".join(problems)
    scheduled = {b.line for f in FAMILIES for b in f.blocks}
    assert scheduled == {b.line for b in BLOCKS if b.runs}  # every unmarked command block runs


def test_the_checks_still_find_their_commands() -> None:
    """Each :data:`EXPECT` entry names a command the README still runs (else update it)."""
    texts = [b.text for b in BLOCKS if b.runs]
    missing = [cmd for cmd, _ in EXPECT if not any(cmd in t for t in texts)]
    assert not missing, f"no README block runs {missing} any more: update EXPECT"
    for section in BACKGROUND:
        body = README.read_text(encoding="utf-8").split(f"## {section}\n", 1)[1].split("\n## ")[0]
        assert "another shell" in body and "start --demo" in body, (
            f"section {section!r} no longer says to run `start --demo` in another shell: "
            "update BACKGROUND"
        )


def test_the_parser_sees_markers_and_plain_command_blocks() -> None:
    sample = (
        "## A\n\ntext\n\n<!-- not run: an example of output -->\n\n```bash\nrm -rf /\n```\n\n"
        "## B\n```\n.venv/bin/citychain status\n```\n<!-- not run -->\n```python\nx\n```\n"
    )
    a, b, c = parse(sample)
    assert (a.section, a.lang, a.marker, a.runs) == ("A", "bash", "an example of output", False)
    assert (b.section, b.lang, b.kind, b.line) == ("B", "", None, 12)
    assert (c.marker, c.runs) == ("", False)


# -- running a family ------------------------------------------------------------------------------
def _path_without_citychain() -> str:
    venv_bin = (Path(sys.prefix) / "bin").resolve()
    keep = []
    for p in os.environ.get("PATH", "").split(os.pathsep):
        if not p or Path(p).resolve() == venv_bin or (Path(p) / "citychain").exists():
            continue
        keep.append(p)
    return os.pathsep.join(keep)


class Runner:
    """One family's working directory, ports, environment and nodes."""

    def __init__(self, family: Family, work: Path) -> None:
        self.family = family
        self.work = work
        if not (Path(sys.prefix) / "bin" / "citychain").exists():
            pytest.fail(f"{sys.prefix}/bin/citychain is missing: run the tests from the venv")
        (work / ".venv").symlink_to(sys.prefix, target_is_directory=True)
        # Claimed across the test workers until stop() (tests/e2e/ports.py): the nodes bind
        # them only when a block runs.
        self._ports = (PortBlocks(1), PortBlocks(6))  # the demo's API; 6 nodes of a network
        self.api_port = self._ports[0].base
        self.net_base = self._ports[1].base
        self.generated = False  # whether this directory's network was made (--base-port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITYCHAIN_")}
        env.pop("VIRTUAL_ENV", None)
        # A command without --node reaches the default port, which the demo maps here; in a
        # network family nothing listens there, so a block that forgets --node fails.
        env["CITYCHAIN_NODE"] = f"http://127.0.0.1:{self.api_port}"
        env.update(PATH=_path_without_citychain(), COLUMNS="160", PYTHONUNBUFFERED="1")
        self.base_env = env
        self.env_file = work.parent / "exports.sh"
        self.section = ""
        self.background: subprocess.Popen[bytes] | None = None
        self.log = work.parent / "background.log"

    # -- text ------------------------------------------------------------------------------
    def prepare(self, block: Block) -> str:
        text = block.text
        text = re.sub(r"(?<=[:\s])26657\b", str(self.api_port), text)
        text = re.sub(
            r"(?<=[:\s])27(\d{3})\b", lambda m: str(self.net_base + int(m.group(1))), text
        )
        if not self.generated and re.search(r"citychain net up\b", text):
            text = re.sub(
                r"(citychain net up)\b(?![^\n]*--base-port)",
                rf"\1 --base-port {self.net_base}",
                text,
                count=1,
            )
            self.generated = True
        found = set(_PLACEHOLDER.findall(text)) & set(PLACEHOLDERS)
        if found and block.kind == "bash":
            bob = self.bob()
            for name in found:
                text = text.replace(name, PLACEHOLDERS[name](bob))
        return text

    def bob(self) -> bytes:
        doc = json.loads((self.work / KEYS[self.family.setup] / "bob.json").read_text())
        return get_suite(doc["suite"]).address(bytes.fromhex(doc["public_key"]))

    # -- processes ---------------------------------------------------------------------------
    def run(self, script: list[str], what: str, timeout: float = BLOCK_TIMEOUT) -> str:
        proc = subprocess.Popen(
            script,
            cwd=self.work,
            env=self.base_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            pytest.fail(f"{what} did not finish within {timeout:g}s; output:\n{out.decode()}")
        text = out.decode(errors="replace")
        if proc.returncode != 0:
            pytest.fail(f"{what} failed (exit {proc.returncode}); output:\n{text}")
        return text

    def run_block(self, block: Block) -> str:
        if block.section != self.section:  # a reader starts each section in a fresh shell
            self.section = block.section
            self.env_file.write_text("")
            if self.family.setup == "net":  # ... with the network up (a section may end with
                self.network_up()  # `net down`; `net up` again restarts the same network)
        text = self.prepare(block)
        for tool in TOOLS:
            used = block.kind == "bash" and re.search(rf"(^|[|;&(]\s*){tool}\b", text, re.M)
            if used and shutil.which(tool, path=self.base_env["PATH"]) is None:
                pytest.fail(f"{block} uses {tool}, which is not installed here")
        if block.kind == "python":
            path = self.work.parent / f"block_{block.line}.py"
            path.write_text(text)
            return self.run([sys.executable, str(path)], str(block))
        script = (
            f"source {shlex.quote(str(self.env_file))}\nset -eo pipefail\n{text}\n"
            f"export -p > {shlex.quote(str(self.env_file))}\n"
        )
        return self.run(["bash", "-c", script], str(block))

    def network_up(self) -> None:
        """The network of the README's first command, made or restarted."""
        block = Block(0, "bash", first_net_up(), "", "", None)
        what = f"the README's first command ({block.text})"
        self.run(["bash", "-c", self.prepare(block)], what)

    def start_background(self) -> None:
        """The node a section says to run in another shell."""
        command = BACKGROUND[self.family.blocks[0].section]
        cmd = [*shlex.split(command), "--port", str(self.api_port)]
        with self.log.open("wb") as log:
            self.background = subprocess.Popen(
                cmd, cwd=self.work, env=self.base_env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_for_api(self.api_port)

    def _wait_for_api(self, port: int, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.background is not None
            if self.background.poll() is not None:
                pytest.fail(f"the background node exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        pytest.fail(
            f"the background node did not answer within {timeout:g}s:\n{self.log.read_text()}"
        )

    def stop(self) -> list[str]:
        """Stop what the family started; what went wrong while stopping."""
        problems = []
        if (self.work / ".citychain-net" / "pids.json").exists():
            down = subprocess.run(
                [".venv/bin/citychain", "net", "down"],
                cwd=self.work,
                env=self.base_env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if down.returncode != 0:
                problems.append(f"net down failed: {down.stdout}{down.stderr}")
        if self.background is not None and self.background.poll() is None:
            self.background.send_signal(signal.SIGTERM)
            try:
                code = self.background.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.background.kill()
                self.background.wait()
                problems.append("the background node did not stop within 60s of SIGTERM")
            else:
                if code != 0:  # the README: "it finishes the block in flight ... exits 0"
                    problems.append(f"the background node exited {code} on SIGTERM")
        for ports in self._ports:
            ports.release()
        return problems


def _check(block: Block, output: str) -> None:
    for command, fact in EXPECT:
        if command in block.text:
            assert fact in output, f"{block}: after `{command}` expected {fact!r} in:\n{output}"


@pytest.fixture
def runner_for(tmp_path: Path) -> Iterator[Callable[[Family], Runner]]:
    made: list[Runner] = []

    def make(family: Family) -> Runner:
        work = tmp_path / "work"
        work.mkdir()
        r = Runner(family, work)
        made.append(r)
        return r

    yield make
    problems = [p for r in made for p in r.stop()]
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES, ids=[f.name for f in FAMILIES])
def test_readme_blocks_run(family: Family, runner_for: Callable[[Family], Runner]) -> None:
    runner = runner_for(family)
    if family.setup == "demo":
        runner.start_background()
    transcript = runner.work.parent / "transcript.txt"  # every block's output, for debugging
    with transcript.open("w") as log:
        for block in family.blocks:
            started = time.monotonic()
            output = runner.run_block(block)
            log.write(f"==== {block} ({time.monotonic() - started:.1f}s)\n{output}\n")
            log.flush()
            _check(block, output)
