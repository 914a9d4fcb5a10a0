"""Token ledger service (Flask + psycopg 3 + stripe-python, run under gunicorn)."""
