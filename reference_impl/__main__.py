"""`python -m reference_impl`: serve on 127.0.0.1:$PORT with the contract's variables."""

from __future__ import annotations

import logging
import sys
import warnings

import uvicorn

from reference_impl.app import create_app
from reference_impl.service import TokenService
from reference_impl.settings import ConfigError, Settings


def main(service_class: type[TokenService] = TokenService) -> int:
    # stripe 16's async HTTPX client passes bytes as `data=`; harmless noise.
    warnings.filterwarnings("ignore", message="Use 'content=<...>'", category=DeprecationWarning)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"reference_impl: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings, service_class),
        host="127.0.0.1",
        port=settings.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
