"""WSGI entry point, for tooling that wants one. Serve production traffic with ASGI (asgi.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "minirag.settings")

application = get_wsgi_application()
