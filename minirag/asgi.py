"""ASGI entry point (uvicorn/gunicorn). Streaming chat answers need ASGI."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "minirag.settings")

application = get_asgi_application()
