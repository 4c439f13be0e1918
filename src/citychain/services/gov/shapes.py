"""The governance proposal kinds and their parameters, declared once.

Pure data shared by the ``gov`` contract (which checks a proposal's params against
:data:`KIND_PARAMS`), the SDK (which builds params from ``NAME=VALUE`` text and convenience
flags, :func:`citychain.sdk.build_params`) and the CLI (whose ``gov propose`` flags are
:data:`FLAGS`). Nothing here imports the contract, so the SDK may use it.

A kind has one or more *shapes*: the params it takes, required and optional. ``revoke`` takes
an ``address`` or an ``org`` and ``serial``; ``freeze``/``unfreeze`` an ``address`` or a
``contract``. :data:`FLAGS` is derived: a flag applies to every kind one of whose shapes
names its parameter.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Shape:
    """One accepted set of params of a proposal kind."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return self.required + self.optional


#: Each proposal kind (in the order people are told them) and the shapes of its params.
KIND_PARAMS: dict[str, tuple[Shape, ...]] = {
    "add_org": (Shape(("id", "name", "ca_cert", "admins"), ("roles",)),),
    "update_org": (Shape(("id",), ("name", "ca_cert", "admins")),),
    "remove_org": (Shape(("id",)),),
    "add_validator": (Shape(("public_key", "power", "name", "org")),),
    "remove_validator": (Shape(("public_key",)),),
    "set_validator_power": (Shape(("public_key", "power")),),
    "set_params": (Shape(("params",)),),
    "revoke": (Shape(("address",)), Shape(("org", "serial"))),
    "freeze": (Shape(("address",)), Shape(("contract",))),
    "unfreeze": (Shape(("address",)), Shape(("contract",))),
    "enable_contract": (Shape(("contract", "version")),),
    "set_policy": (Shape(("target", "policy")),),
}

#: The proposal kinds, in order.
KIND_NAMES: tuple[str, ...] = tuple(KIND_PARAMS)

#: The convenience flags of ``gov propose`` and the parameter each sets (``--admin`` and
#: ``--admin-key-file`` both add to ``admins``; list-valued flags may be repeated).
FLAG_PARAMS: dict[str, str] = {
    "--org-id": "id",
    "--name": "name",
    "--ca-cert": "ca_cert",
    "--admin": "admins",
    "--admin-key-file": "admins",
    "--role": "roles",
    "--public-key": "public_key",
    "--power": "power",
    "--org": "org",
    "--address": "address",
}


def kinds_taking(param: str) -> tuple[str, ...]:
    """The kinds one of whose shapes has ``param``, in :data:`KIND_NAMES` order."""
    return tuple(k for k, shapes in KIND_PARAMS.items() if any(param in s.names for s in shapes))


#: Flag -> (the parameter it sets, the kinds it is for): derived from the two tables above.
FLAGS: dict[str, tuple[str, tuple[str, ...]]] = {
    flag: (param, kinds_taking(param)) for flag, param in FLAG_PARAMS.items()
}


def check_policy_target(target: str) -> None:
    """``gov:<kind>`` of a known kind (else :class:`~citychain.errors.NotFound`), or
    ``contract.method`` / ``contract.*`` of names (else ``bad_arguments``)."""
    from citychain.errors import CitychainError, ErrorCode, InvalidInput, NotFound
    from citychain.types.policy import check_name

    if target.startswith("gov:"):
        if target[4:] not in KIND_PARAMS:
            raise NotFound(f"no proposal kind {target[4:]!r} (kinds: {', '.join(KIND_NAMES)})")
        return

    def is_name(value: str) -> bool:
        try:
            check_name(value, "name")
        except CitychainError:
            return False
        return True

    contract, _, method = target.partition(".")
    if not (is_name(contract) and (method == "*" or is_name(method))):
        raise InvalidInput(
            f"policy target {target[:80]!r} must be 'contract.method', 'contract.*' or "
            "'gov:<kind>'",
            ErrorCode.BAD_ARGUMENTS,
        )
