"""The MiniRAG ASGI application with the benchmark models registered (bench/providers.py).

Also, for benchmarks that hold many connections (bench/streams.py): the soft limit on open files
is raised to the hard limit (one socket per open stream), and with `MINIRAG_BENCH_DIAGNOSE=<dir>`
the server writes what it holds to `<dir>/<n>.json` on SIGUSR1 (threads by name, the most common
objects, and a tracemalloc snapshot to `<dir>/<n>.tracemalloc` when `MINIRAG_BENCH_TRACEMALLOC`
names a number of frames to trace; bench/diagnostics.py).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from bench.diagnostics import install_diagnostics, raise_open_files_limit

raise_open_files_limit()
install_diagnostics()

from bench.providers import register  # noqa: E402
from minirag.asgi import application  # noqa: E402, F401

register()
