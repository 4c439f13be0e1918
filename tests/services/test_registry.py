"""The service registry: what each edge of the system finds in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from citychain import registry
from citychain.errors import ConfigError, NotFound
from citychain.execution import default_registry
from citychain.sdk import AsyncClient, Client
from citychain.sdk._services import attach_services
from citychain.services.gov.sdk import AsyncGov, Gov
from citychain.services.token.sdk import AsyncToken, Token


def test_the_registry_names_gov_and_token_first_in_order() -> None:
    names = [s.name for s in registry.services()]
    assert names[:2] == ["gov", "token"] and len(set(names)) == len(names)
    routers = [s.name for s, _ in registry.parts("router")]
    assert "gov" in routers and "token" not in routers  # token has no routes
    assert [s.name for s, _ in registry.parts("cli")][:2] == ["gov", "token"]


def test_the_node_runs_every_services_contract() -> None:
    contracts = default_registry()
    assert contracts.get("gov").name == "gov"
    assert contracts.get("token").name == "token"


def test_every_client_carries_each_services_helper() -> None:
    with Client("http://127.0.0.1:1") as client:
        assert isinstance(client.gov, Gov) and isinstance(client.token, Token)
        assert {"gov": client.gov, "token": client.token}.items() <= dict(client.services).items()
        assert client.service(Gov) is client.gov  # typed
        with pytest.raises(NotFound, match="no registered service gives this client a int"):
            client.service(int)
    client_async = AsyncClient("http://127.0.0.1:1")
    assert isinstance(client_async.gov, AsyncGov) and isinstance(client_async.token, AsyncToken)
    assert client_async.service(AsyncToken) is client_async.token


def test_what_services_export_is_importable_from_the_sdk() -> None:
    import citychain.sdk as sdk

    assert sdk.Gov is Gov
    assert sdk.build_params("add_org", param=["id=org9", "name=Parks", "admins=[]"])["id"] == "org9"
    with pytest.raises(AttributeError, match="has no attribute 'bind'"):
        _ = sdk.bind  # the wiring is not exported
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        _ = sdk.nothing_here


def test_a_service_may_not_shadow_a_client_method(monkeypatch: pytest.MonkeyPatch) -> None:
    from citychain.sdk import _services

    monkeypatch.setattr(_services, "_sdk_parts", lambda: (("status", __import__("types")),))
    with pytest.raises(ConfigError, match="service 'status' has the name of a client method"):
        attach_services(Client("http://127.0.0.1:1"), asynchronous=False)


def test_a_folder_without_an_init_is_no_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data beside a service (``sdk/contexts/`` before ``sdk/__init__.py`` exists) is not
    mistaken for its SDK part."""
    pkg = tmp_path / "svc_nsp"
    (pkg / "sdk" / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cli.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    service = registry.Service("svc_nsp")
    assert service.part("sdk") is None
    assert service.part("cli") is not None
    assert service.part("router") is None


def test_an_sdk_part_without_bind_is_refused_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    from citychain.sdk import _services

    monkeypatch.setattr(_services, "_sdk_parts", lambda: (("half", __import__("json")),))
    with pytest.raises(ConfigError, match="service 'half': its sdk part json has no bind"):
        Client("http://127.0.0.1:1")
