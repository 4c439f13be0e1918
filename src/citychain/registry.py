"""The services a node runs, and how each edge of the system finds their parts.

:data:`SERVICES` lists the services' packages, one per line, in the order their routes,
commands and contracts are added. Adding a service is one line here (and its folder).

The node (``citychain.execution.default_registry``), the API (``create_app``), the CLI
(``citychain.cli.main``) and the SDK (``Client``) each ask :func:`parts` for the modules of one
role and use them by the conventions of :mod:`citychain.services`. A part is imported only when
asked for, so the SDK loads no contract (nor RocksDB) and a node loads no CLI: this module
imports nothing of citychain itself.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

#: The roles a service's modules can play (see :mod:`citychain.services`).
Role = Literal["shapes", "contract", "sdk", "router", "cli"]

#: The platform services of this release, by package.
SERVICES: tuple[str, ...] = (
    "citychain.services.gov",
    "citychain.services.token",
    "citychain.services.identity",
    "citychain.services.data",
)


@dataclass(frozen=True, slots=True)
class Service:
    """One registered service: its name (the last part of its package) and package."""

    package: str

    @property
    def name(self) -> str:
        return self.package.rpartition(".")[2]

    def part(self, role: Role) -> ModuleType | None:
        """The service's module for ``role``, imported now; None when it has none."""
        module = f"{self.package}.{role}"
        spec = importlib.util.find_spec(module)
        # A folder without an __init__.py (a namespace package: data, or a part not written
        # yet) is no part: only a module or a regular package plays a role.
        if spec is None or spec.origin is None:
            return None
        return importlib.import_module(module)


def services() -> tuple[Service, ...]:
    """Every registered service, in :data:`SERVICES` order."""
    return tuple(Service(p) for p in SERVICES)


def parts(role: Role) -> list[tuple[Service, ModuleType]]:
    """The ``role`` module of every service that has one, in :data:`SERVICES` order."""
    found = []
    for service in services():
        module = service.part(role)
        if module is not None:
            found.append((service, module))
    return found
