#!/usr/bin/env python
"""A thousand answer streams open at once in one process: errors, and what one open stream costs.

    .venv/bin/python bench/streams.py                     # 1,000 streams, 3 waves at 12/s (≈ 12 min)
    .venv/bin/python bench/streams.py --streams 300 --rate 20
    .venv/bin/python bench/streams.py --quick             # 20 streams, 3 short waves (the test smoke, ≈ 40 s)
    .venv/bin/python bench/streams.py --streams 150 --rate 4 --waves 1 --tracemalloc 5   # where it goes
    .venv/bin/python bench/streams.py --database-url postgres://postgres@127.0.0.1:5432/minirag_streams

The target (issue 19): 1,000 concurrent open streams in one process, zero errors, memory flat
after warm-up, at most 50 KB per open stream.

What runs where:

* **the server**: the real application (`bench.bench_asgi:application`: `minirag.asgi` with the
  benchmark models of bench/providers.py) in ONE uvicorn process on loopback, flags as `make run`
  (bench/load.py's `Server`). Embedded mode by default (SQLite, local-mode Qdrant, the offline
  `local/minilm` embedder, in a temporary directory); --database-url: a throwaway PostgreSQL
  database named after the URL's (created and dropped here). The admission gate runs with the
  server's defaults (slots = cores, a line of 100 per slot) unless --queue-limit is given: the
  arrival rate is kept below the rate one process starts turns, so the line stays short.
* **the model**: `bench/fixed` (a provider on the network: its first token after 0.5 s, then
  one token every --word-delay seconds, whatever the load), with an answer long enough that every
  stream of a wave is open at once: N / rate seconds of arrivals plus --hold seconds.
* **the seed**, through the HTTP API (bench/burst.py's): a tenant, a bot, a few documents
  ingested, a widget (bot) token; the widget's rate limits raised so that none refuses.
* **the client**: this process, one plain HTTP/1.1 connection per stream over asyncio
  (bench/burst.py's `stream_turn`: the lightest client there is), each stream a visitor of its own.
  Both processes raise their soft limit on open files to the hard limit.

Measured, in order:

1. warm-up: --warmup short turns (`bench/instant`), one after the other (imports, the embedder,
   caches); then the **warm-up wave**: N chats at --rate per second like a wave below, but with
   answers that end at once (`bench/instant`), so that only a few are open at any moment — every
   code path of a wave at its rate, the allocator's growth from starting N turns included. Then,
   with no stream open, the server's resident memory (VmRSS) and threads: **idle**.
2. the bot switches to `bench/fixed`; then --waves waves (at least 3): N streamed chats started
   at --rate per second, each read to its end. Every 0.5 s the server's VmRSS and threads are
   sampled, and the number of streams open (response headers received, stream not ended).
   Per wave: the peak of streams open at once, completed streams (ended with `done`), errors (a
   non-200 answer, a 503 of the admission gate included, a transport error, a stream without
   `done`), time to the first delta, and the memory at the **plateau** (the highest VmRSS while
   at least 98% of the sampled peak were open) and after the wave (all closed, 2 s later).

KB per open stream = (VmRSS at the plateau - VmRSS before the wave, with 0 open) / streams open
at the plateau. The target applies to the worst of: the first wave against the idle memory of
step 1 — what holding a thousand streams open costs a warm process, the allocator's growth
included — and each later wave against the memory the wave before left (which, once the first
wave has grown the heap, is mostly reused: that figure alone would hide the first wave's cost).
Flat memory: the memory after each wave grows by < 5 MB per wave after the second (a leak of
5 KB per stream would add 5 MB per wave of 1,000). Threads per open stream: the fewest threads
during the first plateau, minus idle, per open stream (a stream that is still starting needs one).

With --diagnose the server also reports, at idle and at the first wave's plateau, its threads by
name and its most common objects; with --tracemalloc FRAMES, also the Python allocations still
alive at the plateau that were not at idle, per open stream by owner (litellm, django, uvicorn,
chat ...) and the 25 largest. A diagnosis may stop after one wave (--waves 1); its memory figures
are not the product's (tracing costs memory, and the dumps stall the server).

Exit status 1 when a target is missed (with --quick: only on errors). The last line is the summary
as JSON (`STREAMS {...}`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import embedded_environment  # noqa: E402
from bench.burst import QUESTIONS, Target, Turn, seed, stream_turn  # noqa: E402
from bench.diagnostics import (  # noqa: E402
    DIAGNOSE_ENV,
    TRACEMALLOC_ENV,
    growth_by_owner,
    open_files_limit,
    raise_open_files_limit,
    request_dump,
    top_growth,
)
from bench.inbox_channels import proc_status  # noqa: E402
from bench.load import RAISED_RATE_LIMITS, Server, ThrowawayDatabase, clean_environment, percentile  # noqa: E402

TARGET_STREAMS = 1000
TARGET_KB_PER_STREAM = 50.0
FLAT_MB_PER_WAVE = 5.0
FIRST_TOKEN_DELAY = 0.5
SAMPLE_SECONDS = 0.5
SETTLE_SECONDS = 2.0
PLATEAU_SHARE = 0.98  # samples with at least this share of the peak open count make the plateau
# Besides one socket per stream: the server's database, index and log files, its pool, the client's.
SPARE_FILES = 200


@dataclass
class Options:
    streams: int = TARGET_STREAMS
    rate: float = 12.0  # new streams per second
    hold: float = 30.0  # seconds every stream of a wave is open together (at least)
    word_delay: float = 1.0
    waves: int = 3
    warmup: int = 20
    settle: float = SETTLE_SECONDS
    sample_every: float = SAMPLE_SECONDS
    queue_limit: int | None = None
    database_url: str | None = None
    diagnose: bool = False
    tracemalloc: int = 0
    keep_diagnostics: Path | None = None  # where the server's dumps go (default: the run's temporary directory)
    quick: bool = False

    @property
    def answer_seconds(self) -> float:
        """How long one answer streams: every stream started in a wave is still open when the last starts."""
        return self.streams / self.rate + self.hold

    @property
    def words(self) -> int:
        return 1 + math.ceil(max(0.0, self.answer_seconds - FIRST_TOKEN_DELAY) / self.word_delay)


@dataclass
class Sample:
    at: float  # monotonic
    rss_kb: int
    threads: int
    open: int = 0  # filled in after the wave, from the streams' own times


@dataclass
class Wave:
    number: int
    started: int = 0
    completed: int = 0
    errors: int = 0
    refused: int = 0
    error_samples: list[str] = field(default_factory=list)
    peak_open: int = 0
    seconds: float = 0.0
    first_delta_p50_ms: float = float("nan")
    first_delta_p99_ms: float = float("nan")
    before_kb: int = 0  # 0 open, right before the wave
    before_threads: int = 0
    plateau_kb: int = 0
    plateau_open: int = 0
    plateau_threads: int = 0  # the most during the plateau
    plateau_threads_min: int = 0  # the fewest: every stream past its start (see threads_per_stream)
    after_kb: int = 0  # 0 open, SETTLE_SECONDS after the wave
    after_threads: int = 0

    @property
    def kb_per_stream(self) -> float:
        """This wave's streams against the memory the previous wave left (see the docstring)."""
        return (self.plateau_kb - self.before_kb) / self.plateau_open if self.plateau_open else float("nan")


@dataclass
class Report:
    options: Options
    database: str
    files_limit_client: int
    files_limit_server: int | None
    files_hard_limit: int
    idle_kb: int = 0
    idle_threads: int = 0
    warmup_wave: Wave | None = None  # the same turns at the same rate, short answers (few open at once)
    waves: list[Wave] = field(default_factory=list)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    growth: list[str] = field(default_factory=list)  # tracemalloc: idle → the first plateau
    growth_owners: dict[str, int] = field(default_factory=dict)  # the same by owner, in bytes
    growth_lines: dict[str, int] = field(default_factory=dict)  # and by the owner's line

    @property
    def kb_per_stream_cold(self) -> float:
        """The first wave's plateau against the idle memory after the warm-up turns."""
        first = self.waves[0]
        return (first.plateau_kb - self.idle_kb) / first.plateau_open if first.plateau_open else float("nan")

    @property
    def kb_per_stream_worst(self) -> float:
        values = [self.kb_per_stream_cold, *(wave.kb_per_stream for wave in self.waves[1:])]
        return max((value for value in values if not math.isnan(value)), default=float("nan"))

    @property
    def threads_per_stream(self) -> float:
        """Threads an open stream keeps, from the fewest during the first plateau: the most also
        counts the streams that are still starting (a turn's view and first steps need a thread)."""
        first = self.waves[0]
        return (first.plateau_threads_min - self.idle_threads) / first.plateau_open if first.plateau_open else 0.0

    @property
    def growth_per_wave_mb(self) -> float:
        """Memory after the last wave minus after the second, per wave between them."""
        if len(self.waves) < 3:
            return float("nan")
        return (self.waves[-1].after_kb - self.waves[1].after_kb) / 1024 / (len(self.waves) - 2)

    @property
    def errors(self) -> int:
        return sum(wave.errors for wave in self.waves) + (self.warmup_wave.errors if self.warmup_wave else 0)

    @property
    def all_open_at_once(self) -> bool:
        return all(wave.peak_open >= self.options.streams for wave in self.waves)

    @property
    def targets_met(self) -> bool:
        return (
            self.errors == 0
            and all(wave.completed == self.options.streams for wave in self.waves)
            and self.all_open_at_once
            and self.options.streams >= TARGET_STREAMS
            and self.kb_per_stream_worst <= TARGET_KB_PER_STREAM
            and self.growth_per_wave_mb < FLAT_MB_PER_WAVE
        )


# --- One wave ------------------------------------------------------------------------------------


def open_counts(turns: list[Turn], ended: dict[int, float], times: list[float]) -> list[int]:
    """For each of `times`: the streams open then (headers received, not yet ended)."""
    spans = [(turn.headers, ended[turn.number]) for turn in turns if turn.headers is not None and turn.status == 200]
    return [sum(1 for start, end in spans if start <= at < end) for at in times]


def peak_open(turns: list[Turn], ended: dict[int, float]) -> int:
    """The most streams open at the same moment (a sweep over opens and ends)."""
    events = []
    for turn in turns:
        if turn.headers is not None and turn.status == 200:
            events += [(turn.headers, 1), (ended[turn.number], -1)]
    events.sort(key=lambda event: (event[0], event[1]))  # an end before an open at the same instant
    return max(itertools.accumulate(change for _, change in events), default=0)


async def run_wave(
    target: Target, options: Options, number: int, pid: int, on_plateau: Any = None
) -> tuple[Wave, list[Sample]]:
    """N streams started at `options.rate` per second, read to their ends, the server sampled
    meanwhile. `on_plateau` (a coroutine function) runs once, when PLATEAU_SHARE of the streams are
    open at once (or, on a server too slow for that, once all were sent and none started for 5 s)."""
    wave = Wave(number=number)
    turns = [Turn(index) for index in range(options.streams)]
    ended: dict[int, float] = {}
    samples: list[Sample] = []
    timeout = options.answer_seconds + 120
    began = time.monotonic()

    async def one(turn: Turn) -> None:
        await asyncio.sleep(max(0.0, began + turn.number / options.rate - time.monotonic()))
        question = f"{QUESTIONS[turn.number % len(QUESTIONS)]}? (wave {number}, stream {turn.number})"
        await stream_turn(target, turn, question, f"streams-{number}-{turn.number}", timeout=timeout)
        ended[turn.number] = time.monotonic()

    async def sample(done: asyncio.Event) -> None:
        plateau_reached = on_plateau is None
        while not done.is_set():
            status = proc_status(pid)
            samples.append(Sample(at=time.monotonic(), rss_kb=status["rss_kb"], threads=status["threads"]))
            if not plateau_reached:
                live = sum(1 for turn in turns if turn.headers is not None and turn.number not in ended)
                started = [turn.headers for turn in turns if turn.headers is not None]
                # All open; or (a slow server) everything sent and no stream started for 5 s.
                stalled = all(turn.sent for turn in turns) and started and time.monotonic() - max(started) > 5
                if live >= PLATEAU_SHARE * options.streams or (stalled and live):
                    plateau_reached = True
                    await on_plateau()
            try:
                await asyncio.wait_for(done.wait(), options.sample_every)
            except TimeoutError:
                pass

    done = asyncio.Event()
    sampler = asyncio.create_task(sample(done))
    await asyncio.gather(*(one(turn) for turn in turns))
    done.set()
    await sampler
    wave.seconds = time.monotonic() - began
    for sample_, count in zip(samples, open_counts(turns, ended, [s.at for s in samples]), strict=True):
        sample_.open = count
    wave.started = len(turns)
    wave.peak_open = peak_open(turns, ended)
    answered = [turn for turn in turns if not turn.error and turn.done is not None]
    wave.completed = len(answered)
    failed = [turn for turn in turns if turn.error or turn.done is None]
    wave.errors = len(failed)
    wave.refused = sum(1 for turn in failed if turn.refused)
    wave.error_samples = [f"stream {turn.number}: {turn.error or 'no done'}"[:300] for turn in failed[:5]]
    first = [(turn.first_delta - turn.sent) * 1000 for turn in answered if turn.first_delta is not None]
    if first:
        wave.first_delta_p50_ms, wave.first_delta_p99_ms = percentile(first, 0.5), percentile(first, 0.99)
    most = max((s.open for s in samples), default=0)  # the sampled peak (the true one may fall between samples)
    plateau = [s for s in samples if most and s.open >= PLATEAU_SHARE * most]
    if plateau:
        wave.plateau_kb = max(s.rss_kb for s in plateau)
        wave.plateau_open = min(s.open for s in plateau)
        wave.plateau_threads = max(s.threads for s in plateau)
        wave.plateau_threads_min = min(s.threads for s in plateau)
    return wave, samples


async def settled(pid: int, seconds: float) -> dict[str, int]:
    """The server's memory and threads once what the last step started has finished."""
    await asyncio.sleep(seconds)
    samples = []
    for _ in range(3):
        samples.append(proc_status(pid))
        await asyncio.sleep(0.2)
    return {
        "rss_kb": int(statistics.median(s["rss_kb"] for s in samples)),
        "threads": int(statistics.median(s["threads"] for s in samples)),
    }


async def measure(target: Target, options: Options, server: Server, report: Report, diagnose: Path | None) -> None:
    import httpx

    for number in range(options.warmup):
        turn = await stream_turn(target, Turn(-1), f"{QUESTIONS[number % len(QUESTIONS)]}?", f"streams-warm-{number}")
        if turn.error:
            raise RuntimeError(f"a warm-up turn failed: {turn.error}")
    # The warm-up wave: every code path of a wave at its rate, its allocations included, but with
    # answers that end at once (bench/instant), so that few streams are open at any moment: what
    # the first wave then adds is what holding its streams open costs.
    before_warmup = await settled(server.pid, options.settle)
    warmup, _ = await run_wave(target, options, 0, server.pid)
    warmup.before_kb, warmup.before_threads = before_warmup["rss_kb"], before_warmup["threads"]
    async with httpx.AsyncClient(base_url=target.url, timeout=60) as client:
        response = await client.patch(
            f"/v1/bot-profiles/{target.bot_id}",
            json={"model": "bench/fixed"},
            headers={"Authorization": f"Bearer {target.tenant_token}"},
        )
        response.raise_for_status()
    idle = await settled(server.pid, options.settle)
    report.idle_kb, report.idle_threads = idle["rss_kb"], idle["threads"]
    warmup.after_kb, warmup.after_threads = idle["rss_kb"], idle["threads"]
    report.warmup_wave = warmup
    print(wave_line(warmup, options), flush=True)
    if diagnose:
        report.diagnostics.append({"label": "idle", **await asyncio.to_thread(request_dump, server.pid, diagnose)})

    async def first_plateau() -> None:
        if diagnose:
            dump = await asyncio.to_thread(request_dump, server.pid, diagnose)
            report.diagnostics.append({"label": f"{options.streams} open", **dump})

    before = idle
    for number in range(1, options.waves + 1):
        wave, _ = await run_wave(target, options, number, server.pid, first_plateau if number == 1 else None)
        wave.before_kb, wave.before_threads = before["rss_kb"], before["threads"]
        before = await settled(server.pid, options.settle)
        wave.after_kb, wave.after_threads = before["rss_kb"], before["threads"]
        report.waves.append(wave)
        print(wave_line(wave, options), flush=True)
    if diagnose and len(report.diagnostics) > 1:
        numbers = report.diagnostics[0]["number"], report.diagnostics[1]["number"]
        report.growth = top_growth(diagnose, *numbers)
        report.growth_owners = growth_by_owner(diagnose, *numbers)
        report.growth_lines = growth_by_owner(diagnose, *numbers, lines=True)


# --- The run -------------------------------------------------------------------------------------


def server_environment(
    data_dir: Path, database_url: str | None, options: Options, diagnose: Path | None
) -> dict[str, str]:
    env = {
        **clean_environment(),
        **embedded_environment(data_dir, database_url),
        "MINIRAG_ALLOWED_HOSTS": "*",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "MINIRAG_TASKS_IN_PROCESS": "true",
        "MINIRAG_TASKS_RUN_INLINE": "false",
        "MINIRAG_SIGNUP_RATE": "1000/minute",
        "MINIRAG_DEFAULT_EMBEDDING_MODEL": "local/minilm",
        "BENCH_FIRST_TOKEN_DELAY": str(FIRST_TOKEN_DELAY),
        "BENCH_WORDS": str(options.words),
        "BENCH_WORD_DELAY": str(options.word_delay),
        **RAISED_RATE_LIMITS,
    }
    if options.queue_limit is not None:
        env["MINIRAG_TURN_QUEUE_LIMIT"] = str(options.queue_limit)
    if diagnose:
        env[DIAGNOSE_ENV] = str(diagnose)
        if options.tracemalloc:
            env[TRACEMALLOC_ENV] = str(options.tracemalloc)
    return env


def run(options: Options) -> Report:
    soft, hard = raise_open_files_limit()  # the server inherits it (and raises its own again)
    needed = options.streams + SPARE_FILES
    if soft < needed:
        raise SystemExit(
            f"{options.streams} streams need about {needed} open files in each process; the limit is {soft} "
            f"(hard limit {hard}): raise the hard limit (ulimit -Hn, LimitNOFILE=, docker --ulimit nofile=)"
        )
    database = ThrowawayDatabase(options.database_url, None) if options.database_url else None
    if database is not None:
        database.create()
    try:
        with tempfile.TemporaryDirectory(prefix="minirag-streams-") as data_dir:
            diagnose = (options.keep_diagnostics or Path(data_dir) / "diagnostics") if options.diagnose else None
            env = server_environment(Path(data_dir), database.superuser_url if database else None, options, diagnose)
            subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
            server = Server("bench.bench_asgi:application", env)
            try:
                server.wait_ready()
                report = Report(
                    options=options,
                    database="PostgreSQL" if database else "embedded (SQLite)",
                    files_limit_client=soft,
                    files_limit_server=open_files_limit(server.pid),
                    files_hard_limit=hard,
                )
                target = seed(server.url, model="bench/instant", name="Streams")
                print(header_line(report), flush=True)
                asyncio.run(measure(target, options, server, report, diagnose))
            finally:
                server.stop()
    finally:
        if database is not None:
            database.drop()
    return report


# --- Output --------------------------------------------------------------------------------------


def header_line(report: Report) -> str:
    options = report.options
    return (
        f"{options.streams} streams per wave, started at {options.rate:g}/s; one uvicorn process, {report.database}; "
        f"answers of {options.words} tokens {options.word_delay:g} s apart ({options.answer_seconds:.0f} s, "
        f"bench/fixed); admission gate: defaults"
        + (f", queue limit {options.queue_limit}" if options.queue_limit is not None else "")
        + f"; open files: client {report.files_limit_client}, server {report.files_limit_server} "
        f"(hard limit {report.files_hard_limit})"
    )


def wave_line(wave: Wave, options: Options) -> str:
    if wave.number == 0:
        return (
            f"warm-up wave (the same turns, answers that end at once): {wave.completed}/{wave.started} completed, "
            f"{wave.errors} errors, {wave.peak_open} open at once at most, {wave.seconds:.0f} s; memory "
            f"{wave.before_kb / 1024:.1f} → {wave.after_kb / 1024:.1f} MB ({wave.after_threads} threads)"
        )
    return (
        f"wave {wave.number}: {wave.peak_open} open at once at the peak; {wave.completed}/{wave.started} completed, "
        f"{wave.errors} errors ({wave.refused} refused with 503), {wave.seconds:.0f} s; first delta p50 "
        f"{wave.first_delta_p50_ms:,.0f} ms, p99 {wave.first_delta_p99_ms:,.0f} ms; memory before "
        f"{wave.before_kb / 1024:.1f} MB ({wave.before_threads} threads), plateau {wave.plateau_kb / 1024:.1f} MB "
        f"with {wave.plateau_open} open ({wave.plateau_threads_min} to {wave.plateau_threads} threads), "
        f"after {wave.after_kb / 1024:.1f} MB ({wave.after_threads} threads): "
        f"{wave.kb_per_stream:.1f} KB per open stream"
    )


def format_report(report: Report) -> str:
    waves = report.waves
    first = waves[0]
    steps = ", ".join(f"{(b.after_kb - a.after_kb) / 1024:+.1f}" for a, b in itertools.pairwise(waves))
    lines = [
        f"idle after the warm-up ({report.options.warmup} turns, then the warm-up wave): "
        f"{report.idle_kb / 1024:.1f} MB, {report.idle_threads} threads",
        f"first wave: {first.plateau_open} open at the plateau, {first.plateau_kb / 1024:.1f} MB, "
        f"{first.plateau_threads_min} to {first.plateau_threads} threads: {report.kb_per_stream_cold:.1f} KB and "
        f"{report.threads_per_stream:.2f} threads per open stream",
        f"KB per open stream, worst of the first wave (from idle) and the later ones (from the wave before): "
        f"{report.kb_per_stream_worst:.1f} KB (target ≤ {TARGET_KB_PER_STREAM:.0f} KB; "
        f"{report.kb_per_stream_worst / TARGET_KB_PER_STREAM:.2f} x the target)",
        f"peak streams open at once per wave: {', '.join(str(w.peak_open) for w in waves)} "
        f"(target: all {report.options.streams}, ≥ {TARGET_STREAMS}); errors: {report.errors}",
        f"memory after each wave, change from the previous one: {steps} MB; growth per wave after the second: "
        f"{report.growth_per_wave_mb:+.1f} MB (flat: < {FLAT_MB_PER_WAVE:.0f} MB)",
    ]
    for diagnostic in report.diagnostics:
        threads = ", ".join(f"{name} {count}" for name, count in list(diagnostic["threads"].items())[:6])
        objects = ", ".join(f"{name} {count}" for name, count in list(diagnostic["objects"].items())[:12])
        lines += [f"server at {diagnostic['label']}: threads {threads}", f"  objects: {objects}"]
    if report.growth_owners and first.plateau_open:
        per_stream = ", ".join(
            f"{owner} {size / 1024 / first.plateau_open:.1f}" for owner, size in report.growth_owners.items()
        )
        lines.append(f"live Python allocations per open stream at the first plateau, KB (tracemalloc): {per_stream}")
    if report.growth_lines and first.plateau_open:
        lines.append("the same by the owner's line (the 60 largest), bytes per open stream:")
        lines += [
            f"{size / first.plateau_open:10.0f}  {line}" for line, size in list(report.growth_lines.items())[1:61]
        ]
    if report.growth:
        lines += ["allocations that grew most, idle → the first plateau (tracemalloc):", *report.growth]
    for wave in ([report.warmup_wave] if report.warmup_wave else []) + waves:
        for sample in wave.error_samples:
            lines.append(f"  wave {wave.number} error: {sample}")
    return "\n".join(lines)


def summary(report: Report) -> dict[str, Any]:
    return {
        "streams": report.options.streams,
        "idle_kb": report.idle_kb,
        "idle_threads": report.idle_threads,
        "kb_per_stream_cold": report.kb_per_stream_cold,
        "kb_per_stream_worst": report.kb_per_stream_worst,
        "threads_per_stream": report.threads_per_stream,
        "growth_per_wave_mb": report.growth_per_wave_mb,
        "errors": report.errors,
        "targets_met": report.targets_met,
        "warmup_wave": asdict(report.warmup_wave) if report.warmup_wave else None,
        "waves": [{**asdict(wave), "kb_per_stream": wave.kb_per_stream} for wave in report.waves],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=None, help="Streams per wave (default 1,000; 20 with --quick).")
    parser.add_argument(
        "--rate", type=float, default=None, help="New streams per second (default 12; 20 with --quick)."
    )
    parser.add_argument(
        "--hold", type=float, default=None, help="Seconds all streams of a wave stay open together (default 30)."
    )
    parser.add_argument("--word-delay", type=float, default=None, help="Between two tokens (default 1 s).")
    parser.add_argument("--waves", type=int, default=3, help="Waves, at least 3 unless --diagnose (default 3).")
    parser.add_argument("--warmup", type=int, default=None, help="Short turns before measuring (default 20).")
    parser.add_argument(
        "--queue-limit", type=int, default=None, help="MINIRAG_TURN_QUEUE_LIMIT (default: the server's)."
    )
    parser.add_argument("--database-url", help="PostgreSQL superuser URL (a throwaway database) instead of SQLite.")
    parser.add_argument(
        "--diagnose", action="store_true", help="Threads and objects of the server, idle and at the plateau."
    )
    parser.add_argument("--tracemalloc", type=int, default=0, help="With --diagnose: trace allocations, FRAMES deep.")
    parser.add_argument("--keep-diagnostics", type=Path, help="With --diagnose: write the dumps here, and keep them.")
    parser.add_argument("--quick", action="store_true", help="A smoke run: 20 streams, short answers.")
    args = parser.parse_args()
    quick = args.quick
    options = Options(
        streams=args.streams or (20 if quick else TARGET_STREAMS),
        rate=args.rate or (20.0 if quick else 12.0),
        hold=args.hold if args.hold is not None else (1.0 if quick else 30.0),
        word_delay=args.word_delay or (0.1 if quick else 1.0),
        # A diagnosis may stop after the first wave (its memory figures are not the product's anyway).
        waves=args.waves if args.diagnose or args.tracemalloc else max(3, args.waves),
        warmup=args.warmup if args.warmup is not None else (3 if quick else 20),
        settle=0.5 if quick else SETTLE_SECONDS,
        sample_every=0.1 if quick else SAMPLE_SECONDS,
        queue_limit=args.queue_limit,
        database_url=args.database_url,
        diagnose=args.diagnose or bool(args.tracemalloc) or bool(args.keep_diagnostics),
        tracemalloc=args.tracemalloc,
        keep_diagnostics=args.keep_diagnostics,
        quick=quick,
    )
    report = run(options)
    print(format_report(report))
    met = report.targets_met
    print(
        f"targets ({TARGET_STREAMS} open at once, zero errors, ≤ {TARGET_KB_PER_STREAM:.0f} KB per open stream, "
        f"flat memory): {'met' if met else 'MISSED'}"
    )
    print("STREAMS " + json.dumps(summary(report)))
    if report.errors:
        return 1
    return 0 if quick or met else 1


if __name__ == "__main__":
    sys.exit(main())
