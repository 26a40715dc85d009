"""ASGI entry point (uvicorn/gunicorn). Streaming chat answers need ASGI."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "minirag.settings")

from minirag.asgi_handler import get_one_thread_asgi_application

# Django's ASGI handler, with a synchronous view's whole request on one thread (minirag/asgi_handler.py).
django_application = get_one_thread_asgi_application()

from django.conf import settings  # noqa: E402  (configured by django.setup above)

from minirag.asgi_limits import BodySizeLimitMiddleware  # noqa: E402
from minirag.process_limits import raise_open_files_limit, tune_garbage_collector  # noqa: E402
from minirag.scheduler import start_in_process_scheduler  # noqa: E402

# The largest legitimate body is an upload at the cap plus its multipart framing.
application = BodySizeLimitMiddleware(
    django_application,
    max_bytes=max(settings.MAX_JSON_BODY_BYTES, settings.UPLOAD_MAX_BYTES) + 1024 * 1024,
    upload_max_bytes=settings.UPLOAD_MAX_BYTES,
)
start_in_process_scheduler()
# One open file per open stream: the usual soft limit of 1,024 would refuse connections long before
# the process runs out of anything else (minirag/process_limits.py).
raise_open_files_limit()
# Last: everything loaded so far stays for the process's life, out of the collector's way.
tune_garbage_collector()
