"""WSGI entry point for gunicorn: `gunicorn connector.wsgi:app`."""

from connector import create_app

app = create_app()
