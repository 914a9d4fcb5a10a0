"""PostgreSQL provisioning errors, one class per thing that can go wrong."""

from __future__ import annotations

from harness.errors import SetupError


class ProvisioningError(SetupError):
    """PostgreSQL could not be provided."""


class PostgresBinariesNotFound(ProvisioningError):
    """No usable `initdb` / `postgres` binaries where we looked."""


class PortInUse(ProvisioningError):
    """The requested TCP port is already bound by another process."""

    def __init__(self, port: int) -> None:
        super().__init__(
            f"port {port} on 127.0.0.1 is already in use; pass another port, "
            "or none to let tokenproof pick a free one"
        )
        self.port = port


class ServerStartFailed(ProvisioningError):
    """The server process exited or never became ready; carries its log tail."""

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(f"{message}\n--- last lines of the server log ---\n{log_tail}")
        self.log_tail = log_tail


class ServerUnreachable(ProvisioningError):
    """An existing server named by a URL did not answer."""


class MissingCreatedbPrivilege(ProvisioningError):
    """The role in DATABASE_URL may not create databases."""


class SchemaLoadFailed(ProvisioningError):
    """A schema file could not be read or applied to a fresh database."""


class FolderLeftBehind(UserWarning):
    """A temporary folder could not be deleted; the message says which and why."""
