"""Who owns a task: the name of the user the server runs for, the same for every request.

SPEC §2: ``JUPYTERHUB_USER`` when set (JupyterHub starts one server per user and says
whose it is), else a named identity of the server's identity provider, else the OS user
the server runs as. Never ``"kernel"`` (a kernel's requests carry the server's secret,
not an identity) and never jupyter_server's anonymous identities: with token-only auth
it makes up a random user (``Anonymous Io``, a uuid as username) per browser session or
per request, which names nobody.

A kernel's request has no identity of its own, so it gets the named user this server last
saw on a browser or token request (one server, one user: that is the user who runs its
notebooks), or, before any, the OS user.
"""

from __future__ import annotations

import getpass
import os
import re
from typing import Any

HUB_USER_ENV = "JUPYTERHUB_USER"
_UUID_HEX = re.compile(r"[0-9a-f]{32}")


def is_anonymous(user: Any) -> bool:
    """Whether ``user`` is one jupyter_server made up for a token-only request
    (``IdentityProvider.generate_anonymous_user``: a uuid4 hex username, a name
    ``"Anonymous <moon>"``)."""
    username = str(getattr(user, "username", "") or "")
    name = str(getattr(user, "name", "") or "")
    return not username or (bool(_UUID_HEX.fullmatch(username)) and name.startswith("Anonymous "))


def os_user() -> str:
    """The OS user the server runs as (its uid when the system has no name for it, as
    in a container started with ``--user 1234``)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


class Owners:
    """Resolves the owner of each request; one per server (``settings["bgtasks_owners"]``)."""

    def __init__(self) -> None:
        self._os_user = os_user()
        self._named: str | None = None
        """The last named identity seen: whose notebooks the kernels run."""

    def _server_user(self) -> str:
        return os.environ.get(HUB_USER_ENV) or self._named or self._os_user

    def of_kernel(self) -> str:
        """The owner of a request made with the kernel secret."""
        return self._server_user()

    def of_user(self, user: Any) -> str:
        """The owner of a request by ``user`` (the identity provider's ``current_user``)."""
        hub = os.environ.get(HUB_USER_ENV)
        if hub:
            return hub
        if user is None or is_anonymous(user):
            return self._server_user()
        self._named = str(user.username)
        return self._named
