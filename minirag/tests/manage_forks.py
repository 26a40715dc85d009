"""`python manage.py <args>` many times over, without paying Python's start-up imports every time.

A `manage.py` process spends most of its life importing third-party packages (qdrant-client alone
takes about half of a `--help`). This script, started once, imports those packages — and nothing of
MiniRAG's, and no Django settings — then reads requests (JSON lines on stdin) and answers each by
forking itself: the child takes the request's working directory, environment, stdin, stdout and
stderr files, and runs manage.py exactly as the interpreter runs a script (`__main__`, `sys.argv`,
`sys.path[0]`, the exit status of `SystemExit`, a traceback and status 1 on any other exception).
The reply (a JSON line on stdout) is the child's exit status (negative: the signal that ended it).

The preloading must change nothing a command does: anything the imports print goes to this
process's own stderr, which the caller checks stays empty (a plain `manage.py` would have printed it
into each command's stderr).
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import signal
import sys
import threading
from typing import Any

# Third-party packages only: importing one must read no Django setting (django-eventstream and
# rest_framework do, so they are not here).
PRELOAD = (
    "qdrant_client",
    "docx",
    "urllib3",
    "psycopg",
    "numpy",
    "pydantic",
    "httpx",
    "trafilatura",
    "pypdf",
    "redis",
    "jwt",
    "grpc",
    "jinja2",
    "htmldate",
    "yaml",
    "pytesseract",
    "cryptography",
    "celery",
    "environ",
    "django.core.management",
)
OUR_PACKAGES = ("minirag", "tenants", "bots", "sources", "chat", "webhooks", "providers", "inbox", "evaluation")


def preload() -> None:
    for name in PRELOAD:
        __import__(name)
    from django.conf import settings

    ours = sorted(name for name in sys.modules if name.split(".")[0] in OUR_PACKAGES)
    assert not ours, f"the preload imported MiniRAG's own modules: {ours}"
    assert not settings.configured, "the preload configured Django's settings"
    assert threading.active_count() == 1, "the preload started threads (a fork would lose them)"


def run_command(request: dict[str, Any]) -> None:
    """In the forked child: become `python manage.py <args>` and never return."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, (path, flags) in enumerate(
        [
            (request["stdin"], os.O_RDONLY),
            (request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
            (request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        ]
    ):
        opened = os.open(path, flags, 0o600)
        os.dup2(opened, fd)
        os.close(opened)
    signal.alarm(request["timeout"])  # then SIGALRM ends it, like a subprocess' timeout
    sys.argv = ["manage.py", *request["args"]]
    sys.path[0] = request["cwd"]  # the script's directory, as for `python manage.py`
    script = os.path.join(request["cwd"], "manage.py")
    try:
        runpy.run_path(script, run_name="__main__")
        status = 0
    except SystemExit as exc:  # what the interpreter does with it
        if exc.code is None or isinstance(exc.code, int):
            status = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            status = 1
    except BaseException as exc:  # an uncaught exception: its traceback from manage.py on, status 1
        trace = exc.__traceback__
        while trace is not None and trace.tb_frame.f_code.co_filename != script:
            trace = trace.tb_next
        exc.__traceback__ = trace or exc.__traceback__
        sys.excepthook(type(exc), exc, exc.__traceback__)
        status = 1
    try:  # the interpreter's own exit: wait for threads, run atexit functions, flush
        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status & 0xFF)


def main() -> None:
    # The requests and replies get descriptors of their own; 0 and 1 become /dev/null, so that the
    # children's standard streams start with nothing buffered from them.
    sys.path[0] = os.getcwd()  # the repository (as for manage.py), not this script's directory
    requests = os.fdopen(os.dup(0), "r")
    replies = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    preload()
    print(json.dumps({"ready": True}), file=replies, flush=True)
    for line in requests:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            requests.close()
            replies.close()
            run_command(request)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), file=replies, flush=True)


if __name__ == "__main__":
    main()
