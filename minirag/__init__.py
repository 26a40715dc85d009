"""MiniRAG: a multi-tenant, retrieval-grounded chat backend."""

from minirag.celery import app as celery_app

__all__ = ["celery_app"]
