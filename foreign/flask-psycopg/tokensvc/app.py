"""Flask application factory."""

from __future__ import annotations

import logging
import os
import sys
import uuid

from flask import Flask, g, request

from tokensvc import config, db, defects, errors
from tokensvc.routes import health_bp, payments_bp, tokens_bp


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.request_id = g.get("request_id", "-")
        except RuntimeError:  # outside a request
            record.request_id = "-"
        return True


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)-7s pid=%(process)d %(threadName)s rid=%(request_id)s "
            "%(name)s | %(message)s"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    if os.environ.get("LOG_FILE"):  # optional copy of the log, e.g. when stderr is captured
        copy = logging.FileHandler(os.environ["LOG_FILE"])
        copy.addFilter(_RequestIdFilter())
        copy.setFormatter(handler.formatter)
        root.addHandler(copy)
    root.setLevel(logging.INFO)
    logging.getLogger("stripe").setLevel(logging.WARNING)
    logging.getLogger("psycopg.pool").setLevel(logging.WARNING)


def create_app() -> Flask:
    configure_logging()
    app = Flask("tokensvc")
    app.config.update(config.from_env(), MAX_CONTENT_LENGTH=64 * 1024, JSON_SORT_KEYS=False)
    db.init_pool(app.config["DATABASE_URL"], app.config["DB_POOL_MAX"])

    @app.before_request
    def _request_id() -> None:
        g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex[:16]

    @app.after_request
    def _echo_request_id(resp):
        resp.headers["X-Request-Id"] = g.get("request_id", "")
        return resp

    errors.install(app)
    app.register_blueprint(health_bp)
    app.register_blueprint(tokens_bp)
    app.register_blueprint(payments_bp)
    if defects.ACTIVE:
        logging.getLogger("tokensvc").warning("DEFECT SWITCHED ON: %s", defects.ACTIVE)
    return app
