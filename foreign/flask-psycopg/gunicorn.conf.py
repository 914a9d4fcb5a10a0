"""gunicorn settings: `gunicorn -c gunicorn.conf.py app:app` from this folder."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

bind = f"127.0.0.1:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads, not the DB pool, bound how many requests can wait on Stripe at once
# (a connection is only held while a request talks to PostgreSQL). A purchase
# blocks its thread for as long as Stripe takes, and gunicorn does not spread
# connections evenly over workers, so one worker must be able to hold every
# purchase in flight and still answer a balance read.
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
timeout = 60
graceful_timeout = 10
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG")  # a path, or "-" for stdout; off by default
errorlog = "-"
loglevel = "info"


def on_starting(server):
    """Runs once in the master, before any worker forks: apply migrations."""
    from tokensvc import db
    from tokensvc.app import configure_logging

    configure_logging()
    db.migrate(os.environ["DATABASE_URL"])


def worker_exit(server, worker):
    from tokensvc import db

    db.close_pool()
