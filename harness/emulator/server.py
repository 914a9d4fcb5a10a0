"""Run the emulator: in a background thread of this process, or standalone."""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field

import uvicorn

from harness.emulator.api import ApiSettings
from harness.emulator.app import create_app
from harness.emulator.clock import Clock
from harness.emulator.core import Emulator
from harness.emulator.defaults import API_VERSION, DEFAULT_API_LATENCY_S, DEFAULT_WEBHOOK_SECRET
from harness.emulator.delivery import DeliverySettings
from harness.emulator.sender import aiohttp_sender

START_DEADLINE_S = 20.0


@dataclass
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    seed: int = 0
    webhook_url: str | None = None
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    # The one key the API accepts (Bearer or Basic); None accepts any test key.
    api_key: str | None = None
    # Stripe's processing time per API request, modelled: a request holds its
    # idempotency key this long, so concurrent same-key requests meet a 409.
    api_latency_s: float = DEFAULT_API_LATENCY_S
    # The account's default API version (headers and events when a request names none).
    api_version: str = API_VERSION


# How long an idle connection from a service's Stripe SDK stays open. uvicorn
# closes them after 5 s, while SDKs' HTTP clients keep them longer (Go 90 s,
# Node agents until the server closes): a request written onto a connection
# being closed fails with a reset that real Stripe, whose front ends keep
# connections far longer, would not cause, and the service's error answer
# would be blamed on the service.
KEEP_ALIVE_S = 120


def build(config: EmulatorConfig, clock: Clock | None = None) -> tuple[Emulator, uvicorn.Config]:
    sender, close_sender = aiohttp_sender()
    emulator = Emulator(
        sender=sender,
        clock=clock,
        seed=config.seed,
        delivery=config.delivery,
        api_version=config.api_version,
    )
    if config.webhook_url:
        emulator.add_endpoint(config.webhook_url, config.webhook_secret)
    settings = ApiSettings(api_key=config.api_key, latency_s=config.api_latency_s)
    app = create_app(emulator, settings=settings, on_shutdown=close_sender)
    return emulator, uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        timeout_keep_alive=KEEP_ALIVE_S,
    )


class EmulatorThread:
    """The emulator on its own event loop in a daemon thread; `with` starts and stops it.

    The harness talks to it over HTTP like any other client, so in-thread and
    standalone emulators behave the same.
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Bind before the thread starts: the port is known and taken at once.
        self._sock.bind((self.config.host, self.config.port))
        self.port: int = self._sock.getsockname()[1]
        self.emulator, uv_config = build(self.config)
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(target=self._run, name="stripe-emulator", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # reported by start()
            self._error = exc

    def start(self) -> EmulatorThread:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(START_DEADLINE_S / 0.01)):
            if self._server.started or not self._thread.is_alive():
                break
            deadline.wait(0.01)  # polling a condition, bounded
        if not self._server.started:
            self.stop()
            raise RuntimeError(f"the Stripe emulator did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
