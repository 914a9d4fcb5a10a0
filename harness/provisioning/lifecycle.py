"""What servers the harness starts have in common with `with`."""

from __future__ import annotations

from types import TracebackType


class StopsOnExit:
    """`__exit__` calls `stop()` however the block ended (an error, Ctrl-C), so
    a `with` leaves nothing running. Subclasses give `__enter__` and `stop`."""

    def stop(self) -> None:
        raise NotImplementedError

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
