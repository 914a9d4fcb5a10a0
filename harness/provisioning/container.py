"""The service under test as a container started from an image (`--target-image`).

Through the Docker SDK for Python: the image is started with the contract's
environment pointing at the PostgreSQL and emulator tokenproof runs, and
supervised like a started process (`ServiceProcess`'s interface: `alive`,
`exit_code`, `log_tail`, `kill`, `start`, `restart`, `cleanup`), so crash
supervision and the faults suite's kill-and-restart work unchanged.

Networking: on a Linux engine the container shares the host's network
(`network_mode=host`), so the service binds 127.0.0.1 on the port tokenproof
chose and reaches PostgreSQL and the emulator on 127.0.0.1 as a process would;
nothing outside loopback is touched. Where host networking does not reach the
host (Docker Desktop, an engine that is not Linux), the port is published on
127.0.0.1, the service is asked to bind 0.0.0.0 inside its container (`HOST`),
and its URLs name `host.docker.internal` instead of 127.0.0.1.

Cleanup: every container carries `tokenproof.run=<id>` and its owner (host,
boot, pid and the pid's start time). It is removed when the run ends (success,
failure, Ctrl-C, SIGTERM); a run killed outright (SIGKILL) cannot, so each run
removes, before starting anything, the containers of this machine whose owner
is gone.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import docker
import docker.errors
import httpx
import requests

from harness.errors import SetupError
from harness.provisioning.local import free_port
from harness.provisioning.processes import ProcessClosed, ProcessStartFailed, process_id
from harness.provisioning.service import ServiceEnv
from harness.provisioning.workdirs import run_dir
from harness.waiting import DeadlineExceeded, wait_until

LABEL_RUN = "tokenproof.run"
LABEL_OWNER = "tokenproof.owner"  # "<pid>:<start time of that pid, in clock ticks>"
LABEL_HOST = "tokenproof.host"
LABEL_BOOT = "tokenproof.boot"
DESKTOP_HOST = "host.docker.internal"
PROBE_API_VERSION = "1.24"  # the oldest API current engines still serve
Networking = Literal["host", "publish"]


class DockerUnavailable(SetupError):
    """No Docker daemon answers where the client looks (DOCKER_HOST or the default socket)."""


class ImageNotFound(SetupError):
    """The image is not in the local engine, and pulling was not asked for."""


class ImagePullFailed(SetupError):
    """--pull was given and the engine could not pull the image."""


class ContainerStartFailed(ProcessStartFailed):
    """The container could not be created, exited, or never answered /health."""


def connect() -> docker.DockerClient:
    """A client for the daemon DOCKER_HOST names (or the default socket), checked."""
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        if where.startswith("unix://"):
            # Our own probe first: the SDK leaks its socket when the connect fails.
            with socket.socket(socket.AF_UNIX) as probe_socket:
                probe_socket.settimeout(10)
                probe_socket.connect(where.removeprefix("unix://"))
        # A fixed version sends nothing until ping(), and a failed ping leaves a
        # client we can close (the version negotiation of the constructor leaks
        # its socket when the daemon is absent).
        probe = docker.from_env(version=PROBE_API_VERSION, timeout=10)
        try:
            probe.ping()
        finally:
            probe.close()
        return docker.from_env(timeout=60)  # negotiates the daemon's API version
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        raise DockerUnavailable(
            f"no Docker daemon answers at {where} ({exc}); --target-image needs one: "
            "start it (`sudo systemctl start docker`, or `sudo dockerd &`; Docker Desktop: "
            "open the app), or point DOCKER_HOST at a running daemon"
        ) from exc


def networking_for(info: Mapping[str, Any]) -> Networking:
    """Host networking where it reaches the host's loopback (a Linux engine on this
    machine); else publish the port and use host.docker.internal (Docker Desktop)."""
    if "docker desktop" in str(info.get("OperatingSystem", "")).lower():
        return "publish"
    if info.get("OSType", "linux") != "linux":
        return "publish"
    return "host"


def for_publish(url: str) -> str:
    """`url` as a container on a published port reaches it: loopback becomes the
    host's name inside Docker Desktop's containers."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        return url
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@" if userinfo else ""
    netloc += DESKTOP_HOST + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _started(pid: int) -> str | None:
    """With the pid, the start time names one process, even after the pid is reused."""
    running = process_id(pid)
    return None if running is None else str(running.started)


def owner_labels(run_id: str) -> dict[str, str]:
    pid = os.getpid()
    return {
        LABEL_RUN: run_id,
        LABEL_OWNER: f"{pid}:{_started(pid)}",
        LABEL_HOST: socket.gethostname(),
        LABEL_BOOT: _boot_id(),
    }


def owner_gone(labels: Mapping[str, str]) -> bool:
    """The run that labelled a container has ended: it ran on this machine (same host
    name) in an earlier boot, or its process no longer exists. Containers of other
    machines sharing the daemon are never judged."""
    if labels.get(LABEL_HOST) != socket.gethostname():
        return False
    if labels.get(LABEL_BOOT) != _boot_id():
        return True
    pid, _, started = labels.get(LABEL_OWNER, "").partition(":")
    if not pid.isdigit():
        return True
    return _started(int(pid)) != started


def remove_dead_runs(client: docker.DockerClient) -> list[str]:
    """Remove the containers left by tokenproof runs that died without cleaning up
    (SIGKILL, a power cut); returns their names."""
    removed = []
    # The list's own data (sparse): inspecting each one would race with runs
    # that remove theirs meanwhile.
    for container in client.containers.list(all=True, filters={"label": LABEL_RUN}, sparse=True):
        if owner_gone(container.attrs.get("Labels") or {}):
            try:
                client.api.remove_container(container.id, force=True, v=True)
            except docker.errors.APIError as exc:
                # Gone already, or another run is removing it right now.
                if exc.status_code not in (404, 409):
                    raise
                continue
            removed.append(str(container.attrs.get("Names", ["?"])[0]).lstrip("/"))
    return removed


def ensure_image(client: docker.DockerClient, image: str, *, pull: bool) -> str:
    """The image's id, pulled first only when `pull` is asked for: tokenproof never
    fetches what it verifies on its own."""
    if pull:
        from docker.utils import parse_repository_tag

        repository, tag = parse_repository_tag(image)
        try:
            client.images.pull(repository, tag=tag or "latest")
        except docker.errors.DockerException as exc:
            raise ImagePullFailed(
                f"--pull: the engine could not pull {image}: {exc}; check the name and "
                "that its registry is reachable (and logged in), or build it locally "
                "and drop --pull"
            ) from exc
    try:
        return str(client.images.get(image).id)
    except docker.errors.ImageNotFound as exc:
        raise ImageNotFound(
            f"image {image} is not in the local Docker engine (`docker image ls`); build "
            "or load it first (`docker build -t IMAGE .`, `docker load -i FILE`), or add "
            "--pull to pull it: tokenproof never pulls unless asked"
        ) from exc
    except docker.errors.APIError as exc:  # e.g. an invalid reference format
        raise ImageNotFound(f"image {image!r}: {exc.explanation or exc}") from exc


def check_image(image: str, *, pull: bool) -> None:
    """Before anything else starts: a daemon answers, dead runs' containers are gone,
    and the image is there (pulled if asked)."""
    client = connect()
    try:
        remove_dead_runs(client)
        ensure_image(client, image, pull=pull)
    finally:
        client.close()


class ServiceContainer:
    """The image started as one container, supervised like `ServiceProcess`.

    The container is created at the first `start()`, started again by later ones
    (so `docker logs` and service.log keep every run), and removed by `cleanup()`.
    """

    def __init__(
        self,
        image: str,
        env: ServiceEnv,
        *,
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
        log_path: Path | None = None,
        run_id: str | None = None,
        health_path: str = "/health",
    ) -> None:
        self.image = image
        self.health_path = health_path
        self.port = port or free_port()
        self.run_id = run_id or secrets.token_hex(4)
        self.name = f"tokenproof-{self.run_id}-{self.port}"
        self._env = env
        self._extra_env = dict(extra_env or {})
        self._keep_log = log_path is not None
        if log_path is None:
            # The run's own folder (harness.provisioning.workdirs): removed at exit,
            # and by the next run's janitor after a SIGKILL.
            log_path = run_dir() / f"tokenproof-service-{self.port}.log"
        else:
            log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self.networking: Networking = "host"
        self._client: docker.DockerClient | None = None
        self._container: Any = None
        self._down = True  # stopped or killed on purpose: not a crash
        self._closed = False  # cleanup() ran: never started again
        self._follower: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _create(self) -> Any:
        # check_image has already swept dead runs and pulled if asked.
        self._client = client = connect()
        image_id = ensure_image(client, self.image, pull=False)
        self.networking = networking_for(client.info())
        env = {**self._extra_env, **self._env.as_env(self.port)}
        options: dict[str, Any] = {}
        if self.networking == "host":
            options["network_mode"] = "host"
        else:
            env["DATABASE_URL"] = for_publish(env["DATABASE_URL"])
            env["STRIPE_API_BASE"] = for_publish(env["STRIPE_API_BASE"])
            env["HOST"] = "0.0.0.0"
            options["ports"] = {f"{self.port}/tcp": ("127.0.0.1", self.port)}
            options["extra_hosts"] = {DESKTOP_HOST: "host-gateway"}
        try:
            return client.containers.create(
                image_id,
                name=self.name,
                environment=env,
                labels=owner_labels(self.run_id),
                detach=True,
                **options,
            )
        except docker.errors.APIError as exc:
            raise ContainerStartFailed(
                f"the engine could not create a container from {self.image}: "
                f"{exc.explanation or exc}",
                "",
            ) from exc

    def start(self, within: float = 60.0) -> ServiceContainer:
        if self._closed:
            # A supervisor thread's restart racing the cleanup on the way out:
            # a container created now would outlive the run.
            raise ProcessClosed(f"the container of {self.image} was removed; not started again")
        try:
            if self._container is None:
                self._container = self._create()
            container = self._container
            since = time.time()
            container.start()
            self._down = False
            self._follow(since)
        except BaseException:
            self.stop()
            raise

        def healthy() -> bool:
            container.reload()
            if container.status in ("exited", "dead"):
                code = container.attrs["State"].get("ExitCode")
                raise ContainerStartFailed(
                    f"the container of {self.image} exited with code {code} before "
                    f"GET {self.url}{self.health_path} answered (it must listen on 127.0.0.1 "
                    "and the PORT it is given)",
                    self.log_tail(),
                )
            try:
                return httpx.get(f"{self.url}{self.health_path}", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(healthy, within=within, what="the service container ready", interval=0.05)
        except DeadlineExceeded as exc:
            self.stop()
            raise ContainerStartFailed(
                f"the container of {self.image} did not answer GET {self.url}{self.health_path} "
                f"with 200 within {within:g} s",
                self.log_tail(),
            ) from exc
        except BaseException:
            self.stop()
            raise
        return self

    def _follow(self, since: float) -> None:
        """Copy this start's output to the log file while it runs (the stream ends
        when the container stops)."""
        container, path = self._container, self.log_path

        def copy() -> None:
            with suppress(Exception), open(path, "ab") as log:
                for chunk in container.logs(stream=True, follow=True, since=since):
                    log.write(chunk)
                    log.flush()

        self._follower = threading.Thread(target=copy, name=f"logs {self.name}", daemon=True)
        self._follower.start()

    def _state(self) -> dict[str, Any] | None:
        if self._container is None:
            return None
        try:
            self._container.reload()
        except docker.errors.NotFound:
            return None
        state: dict[str, Any] = self._container.attrs["State"]
        return state

    def alive(self) -> bool:
        state = self._state()
        return state is not None and bool(state.get("Running"))

    def exit_code(self) -> int | None:
        """Its exit code (the engine's: 128 + N for signal N) if it ended without our
        asking; None while it runs or after stop() / kill()."""
        if self._down:
            return None
        state = self._state()
        if state is None or state.get("Running") or state.get("Status") == "created":
            return None
        return int(state.get("ExitCode", 0))

    def _join_follower(self) -> None:
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.join(timeout=5)

    def stop(self, *, grace_s: float = 10) -> None:
        """SIGTERM (the image's stop signal), then SIGKILL after `grace_s`."""
        self._down = True
        if self._container is not None:
            with suppress(docker.errors.NotFound):
                self._container.stop(timeout=int(grace_s))
        self._join_follower()

    def kill(self) -> None:
        """The abrupt end a fault wants: SIGKILL, no grace."""
        self._down = True
        if self._container is not None and self.alive():
            with suppress(docker.errors.NotFound, docker.errors.APIError):
                self._container.kill()
            with suppress(docker.errors.NotFound):
                self._container.wait(timeout=10)
        self._join_follower()

    def restart(self, within: float = 60.0) -> None:
        self.stop()
        self.start(within)

    def log_tail(self, lines: int = 30) -> str:
        if self._container is not None:
            with suppress(docker.errors.DockerException):
                text = self._container.logs(tail=lines).decode(errors="replace")
                return text.rstrip("\n") or "(no output)"
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])

    def cleanup(self) -> None:
        """Remove the container (by name: also one whose creation was interrupted)."""
        self._closed = True
        self._down = True
        client = self._client or _try_connect()
        try:
            if client is not None:
                try:
                    client.api.remove_container(self.name, force=True, v=True)
                except docker.errors.APIError as exc:
                    if exc.status_code not in (404, 409):  # gone, or being removed
                        raise
        finally:
            self._join_follower()
            self._container = None
            if client is not None:
                client.close()
            self._client = None
            if not self._keep_log:
                self.log_path.unlink(missing_ok=True)


def _try_connect() -> docker.DockerClient | None:
    try:
        return connect()
    except DockerUnavailable:
        return None
