"""The unprivileged OS user a local PostgreSQL server runs as.

PostgreSQL refuses to start as root. When tokenproof itself runs as root (CI,
containers), the server runs as the `postgres` system user if there is one,
otherwise as a system user `tokenproof-pg` that we create once.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass

from harness.provisioning.errors import ProvisioningError

CREATED_USER = "tokenproof-pg"
PREFERRED_USERS = ("postgres", CREATED_USER)


@dataclass(frozen=True)
class OsUser:
    name: str
    uid: int
    gid: int


def server_user() -> OsUser | None:
    """None when we are not root: the server then runs as the invoking user."""
    if os.geteuid() != 0:
        return None
    for name in PREFERRED_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    return _create_user(CREATED_USER)


def _create_user(name: str) -> OsUser:
    useradd = shutil.which("useradd")
    if useradd is None:
        raise ProvisioningError(
            "running as root, PostgreSQL needs an unprivileged user, and `useradd` is "
            f"missing; create a user named {name!r} or run tokenproof as a normal user"
        )
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
    )
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ProvisioningError(
            f"could not create the unprivileged user {name!r} for PostgreSQL: "
            f"{result.stderr.strip()}; create it yourself or run as a normal user"
        ) from None
    return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
