"""The processes of a local network (``citychain net up|status|down``, e2e tests).

Theory of operation
-------------------
Processes: :func:`spawn_node` runs ``<this python> -m citychain.cli.main start --home <home>``
in its own session (a Ctrl-C in the terminal that ran ``citychain net up`` does not reach the
nodes), without ``CITYCHAIN_PASSPHRASE`` in its environment (the node reads its own
passphrase file). A :class:`ProcessRef` is a pid plus the home it serves; before signalling
a pid read back from ``pids.json`` it checks (through ``/proc`` where there is one) that the
process is still a citychain node of that home, so a pid reused by another program after a
reboot is never killed. Without ``/proc`` (macOS) the pid file is trusted as it is.
A node counts as up when ``GET /health`` answers at all (200, or 503 while it is not yet
healthy): the API serving is what ``up`` waits for; consensus is what ``status`` shows.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from citychain.errors import ConfigError
from citychain.node.testnet import NetNode, NetworkLayout, write_atomic

#: Never handed to a node process: it reads its own passphrase file.
_CHILD_ENV_DROP = ("CITYCHAIN_PASSPHRASE", "CITYCHAIN_NODE_HOME")


def node_command(home: Path) -> list[str]:
    """The command that runs the node of ``home``: this interpreter, ``citychain start``."""
    return [sys.executable, "-m", "citychain.cli.main", "start", "--home", str(home.resolve())]


def _node_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CHILD_ENV_DROP}
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach node.log as they happen
    return env


@dataclass(slots=True)
class ProcessRef:
    """A node process: its pid and the home it serves.

    ``returncode`` is known only for a process this one started (its child) once it has
    ended; a process started by an earlier command is only ever "running" or "not running".
    """

    name: str
    pid: int
    home: Path
    returncode: int | None = field(default=None)

    def alive(self) -> bool:
        if self.returncode is not None:
            return False
        try:
            done, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return _runs_node(self.pid, self.home)  # not our child: started earlier
        if done:
            self.returncode = os.waitstatus_to_exitcode(status)
            return False
        return True

    def signal(self, sig: int) -> bool:
        """Send ``sig`` if the process still runs this node; whether it was sent."""
        if not self.alive():
            return False
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the process to end; whether it has."""
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True


def _runs_node(pid: int, home: Path) -> bool:
    """Whether ``pid`` is a live (not zombie) citychain node process of ``home``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: not one of ours
    if not Path("/proc/self").exists():
        return True  # no /proc (macOS): the pid file is all we have
    proc = Path("/proc") / str(pid)
    try:
        stat = (proc / "stat").read_text()
        args = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[:1]
    if state == ["Z"]:
        return False
    return b"citychain.cli.main" in args and str(home.resolve()).encode() in args


def spawn_node(node: NetNode) -> ProcessRef:
    """Start ``node`` in the background; stdout and stderr are appended to its node.log."""
    log = node.log_file
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(f"=== citychain net: starting {node.name} at {datetime.now(UTC).isoformat()} ===\n")
    cmd = node_command(node.home)
    pid = os.posix_spawn(
        sys.executable,
        cmd,
        _node_env(),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,  # its own session: the terminal's Ctrl-C and hang-up do not reach it
        # Nothing the starting process ignored or blocked (nohup, a thread's mask) carries
        # over: SIGTERM must stop the node.
        setsigdef=(signal.SIGINT, signal.SIGTERM),
        setsigmask=(),
    )
    return ProcessRef(node.name, pid, node.home.resolve())


def stop_processes(procs: Iterable[ProcessRef], *, grace: float = 10.0) -> dict[str, str]:
    """SIGTERM every running process, wait up to ``grace`` seconds for all, then SIGKILL the
    rest. Returns, per name, ``"stopped"``, ``"killed"`` or ``"not running"``."""
    result: dict[str, str] = {}
    running: list[ProcessRef] = []
    for p in procs:
        if p.signal(signal.SIGTERM):
            running.append(p)
        else:
            result[p.name] = "not running"
    deadline = time.monotonic() + grace
    for p in running:
        if p.wait(max(0.0, deadline - time.monotonic())):
            result[p.name] = "stopped"
    for p in running:
        if p.name not in result:
            p.signal(signal.SIGKILL)
            p.wait(5.0)
            result[p.name] = "killed"
    return result


def read_pids(layout: NetworkLayout) -> list[ProcessRef]:
    """The processes recorded in ``pids.json`` (running or not); none if there is no file."""
    path = layout.pids_file
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot be read as JSON ({exc}); delete it") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected an object of node name to pid; delete it")
    out: list[ProcessRef] = []
    for name, entry in raw.items():
        pid = entry.get("pid") if isinstance(entry, dict) else None
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
            raise ConfigError(f"{path}: {name!r} has no valid pid; delete the file")
        out.append(ProcessRef(name, pid, layout.node(name).home.resolve()))
    return out


def find_node_processes(layout: NetworkLayout) -> list[ProcessRef]:
    """Running node processes of this network found by their command line (``/proc``; none
    where there is no ``/proc``): finds nodes even when ``pids.json`` is lost."""
    proc_root = Path("/proc")
    if not (proc_root / "self").exists():
        return []
    homes = {str(n.home.resolve()).encode(): n for n in layout.nodes}
    found: list[ProcessRef] = []
    for entry in proc_root.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"citychain.cli.main" not in args or b"--home" not in args:
            continue
        at = args.index(b"--home") + 1
        node = homes.get(args[at]) if at < len(args) else None
        if node is not None and _runs_node(int(entry.name), node.home):
            found.append(ProcessRef(node.name, int(entry.name), node.home.resolve()))
    return found


def write_pids(layout: NetworkLayout, procs: Iterable[ProcessRef]) -> None:
    doc = {
        p.name: {"pid": p.pid, "home": str(p.home.relative_to(layout.root))}
        for p in sorted(procs, key=lambda p: layout.node(p.name).index)
    }
    write_atomic(layout.pids_file, json.dumps(doc, indent=2) + "\n")


def clear_pids(layout: NetworkLayout) -> None:
    layout.pids_file.unlink(missing_ok=True)


def busy_ports(nodes: Sequence[NetNode]) -> list[str]:
    """The ports of ``nodes`` that something else already listens on, for people."""
    busy: list[str] = []
    for n in nodes:
        for port, what in ((n.p2p_port, "p2p"), (n.api_port, "API")):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    busy.append(f"{port} ({n.name} {what})")
    return busy


@dataclass(frozen=True, slots=True)
class NotUp:
    """A node whose API did not answer: why, and the end of its log."""

    name: str
    reason: str
    log_tail: str


def wait_until_up(
    layout: NetworkLayout,
    procs: Mapping[str, ProcessRef],
    *,
    timeout: float = 60.0,
    on_up: Callable[[str], object] | None = None,
) -> list[NotUp]:
    """Wait until the API of every node in ``procs`` answers ``GET /health`` (200, or 503 for
    a node that runs but is not yet healthy). Returns the nodes that did not, each with the
    reason (exited with code N, or no answer within ``timeout``) and the tail of its log."""
    pending = dict(procs)
    failed: list[NotUp] = []
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while pending:
            for name, proc in list(pending.items()):
                node = layout.node(name)
                if not proc.alive():
                    code = proc.returncode
                    reason = "exited" + (f" with code {code}" if code is not None else "")
                    failed.append(NotUp(name, reason, log_tail(node.log_file)))
                    del pending[name]
                    continue
                try:
                    answered = client.get(f"{node.api_url}/health").status_code in (200, 503)
                except httpx.HTTPError:
                    answered = False
                if answered:
                    del pending[name]
                    if on_up is not None:
                        on_up(name)
            if not pending:
                break
            if time.monotonic() >= deadline:
                for name in pending:
                    node = layout.node(name)
                    failed.append(
                        NotUp(
                            name,
                            f"its API at {node.api_url} did not answer within {timeout:g} s",
                            log_tail(node.log_file),
                        )
                    )
                break
            time.sleep(0.2)
    return sorted(failed, key=lambda f: layout.node(f.name).index)


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ("" if there is none)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
