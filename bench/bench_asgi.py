"""The MiniRAG ASGI application with the benchmark models registered (bench/providers.py)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from bench.providers import register
from minirag.asgi import application  # noqa: F401

register()
