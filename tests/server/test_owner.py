"""A task's ``owner`` is the name of the user the server runs for (SPEC §2), from a
browser/token request and from a kernel alike: never ``"kernel"`` nor the random
anonymous user jupyter_server makes up for token-only requests."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth.identity import IdentityProvider, User

from tests.server.test_rest import call


class NamedIdentityProvider(IdentityProvider):  # type: ignore[misc]
    """An identity provider that knows its user by name (as a hub or an SSO one does)."""

    def generate_anonymous_user(self, handler: Any) -> User:
        return User(username="bob", name="Bob", display_name="Bob")


@pytest.fixture
def identity_provider() -> type[IdentityProvider] | None:
    """The server's identity provider class (``None``: Jupyter's own, token only)."""
    return None


@pytest.fixture
def jp_server_config(tmp_path: Path, identity_provider: type[IdentityProvider] | None) -> dict[str, Any]:
    server: dict[str, Any] = {"jpserver_extensions": {"bgtasks_ext": True}}
    if identity_provider is not None:
        server["identity_provider_class"] = identity_provider
    return {"ServerApp": server,
            "BgTasks": {"store_path": str(tmp_path / "store" / "tasks.sqlite"), "workers": 1}}


def _kernel(app: Any) -> dict[str, str]:
    return {"Authorization": f"bgtasks {app.web_app.settings['bgtasks_kernel_secret']}"}


SLEEP = {"kind": "sleep", "params": {"seconds": 0}, "executor": "thread"}


async def test_token_and_kernel_tasks_belong_to_the_os_user(
        bgtasks_app: Any, jp_fetch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a server with token auth only (every request an anonymous identity), no hub
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    # When tasks are created with the token, twice, and with the kernel secret
    owners = []
    for headers in ({}, {}, _kernel(bgtasks_app)):
        code, task = await call(jp_fetch, "tasks", method="POST", body=SLEEP, headers=headers)
        assert code == 201, task
        owners.append(task["owner"])
    # Then all three belong to the user the server runs as
    assert owners == [getpass.getuser()] * 3


async def test_under_jupyterhub_tasks_belong_to_the_hub_user(
        bgtasks_app: Any, jp_fetch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a server JupyterHub started for alice
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    # When a token request and a kernel create tasks / Then both are alice's
    for headers in ({}, _kernel(bgtasks_app)):
        code, task = await call(jp_fetch, "tasks", method="POST", body=SLEEP, headers=headers)
        assert (code, task["owner"]) == (201, "alice")


@pytest.mark.parametrize("identity_provider", [NamedIdentityProvider])
async def test_a_named_identity_owns_its_tasks_and_its_kernels_tasks(
        bgtasks_app: Any, jp_fetch: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an identity provider that names its user bob, and no hub
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    # When bob creates a task, then his kernel does
    code, mine = await call(jp_fetch, "tasks", method="POST", body=SLEEP)
    _, kernels = await call(jp_fetch, "tasks", method="POST", body=SLEEP,
                            headers=_kernel(bgtasks_app))
    # Then both are bob's
    assert (code, mine["owner"], kernels["owner"]) == (201, "bob", "bob")
