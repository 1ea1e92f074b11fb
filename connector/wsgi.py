"""WSGI entry point for gunicorn: `gunicorn connector.wsgi:app`."""

from connector import create_app
from core import runtime

app = create_app()
runtime.freeze_heap()  # in each gunicorn worker, once the app is built
