"""WSGI entry point: `gunicorn -c gunicorn.conf.py app:app`."""

from tokensvc.app import create_app

app = create_app()
