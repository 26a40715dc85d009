"""Measure the real pipeline on the evaluation sets: ingestion, retrieval, the refusal decision, the
offline answerer, follow-ups.

For each set and each way of cutting its documents (`page`, `topic`: evaluation/corpus.py), a fresh
tenant and bot (the defaults a new tenant gets: `local/minilm`, `local/extractive`, the default
floor and top_k) are given the documents through the services the API uses, and every question goes
through a real chat turn (`prepare_turn` + `turns.answer`): the same code as `POST /v1/chat`.

A retrieved chunk *hits* when it comes from the gold document and carries the gold passage
(`holds_passage`); an answer *quotes* the gold when it carries it too. Reported per set and mode:
recall@1 and @5 and MRR@5 over the sources the turn returns, the share of answers quoting a gold
passage, false refusals (answerable questions refused), off-topic refusals, follow-up hit@5 (the
second question of each pair, asked in the same chat after the first), and turn latency.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile

from evaluation.corpus import holds_passage, sections
from evaluation.sets import EvaluationSet, FollowUp, Question, available_sets, load_set, offtopic_questions

# The targets (docs/quality.md), per mode where they differ.
TARGETS: dict[str, dict[str, tuple[str, float]]] = {
    "topic": {"recall@1": (">=", 0.90), "recall@5": (">=", 0.98)},
    "page": {"recall@1": (">=", 0.85), "recall@5": (">=", 0.95)},
    "all": {
        "quoted": (">=", 0.95),
        "false refusals": ("<=", 0.02),
        "off-topic refused": (">=", 0.97),
        "follow-up hit@5": (">=", 0.90),
    },
}
# What `make test` runs: a few questions of a set whose documents live in this repository.
SMOKE_SETS = ("smalldocs",)
SMOKE_QUESTIONS = 4


@dataclass
class TurnResult:
    id: str
    question: str
    rank: int | None  # 1-based position of the first source carrying a gold passage
    refused: bool
    quoted: bool
    latency_ms: float
    answer: str = ""
    searched: str = ""  # the question as the knowledge was searched (a follow-up, resolved)
    # Every local chunk the turn's search returned, with its evidence and whether it carries a gold
    # passage: what `python -m evaluation calibrate` fits the refusal decision on.
    candidates: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunResult:
    set: str
    mode: str
    documents: int
    sources: int
    chunks: int
    ingest_seconds: float
    answerable: list[TurnResult] = field(default_factory=list)
    offtopic: list[TurnResult] = field(default_factory=list)
    followups: list[TurnResult] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        answered = self.answerable
        ranks = [turn.rank for turn in answered]
        latencies = [turn.latency_ms for turn in (*answered, *self.offtopic, *self.followups)]
        share = _share
        return {
            "questions": len(answered),
            "recall@1": share(rank == 1 for rank in ranks),
            "recall@5": share(rank is not None and rank <= 5 for rank in ranks),
            "MRR@5": statistics.fmean(1 / rank if rank and rank <= 5 else 0.0 for rank in ranks) if ranks else 0.0,
            "quoted": share(turn.quoted for turn in answered),
            "false refusals": share(turn.refused for turn in answered),
            "off-topic refused": share(turn.refused for turn in self.offtopic),
            "follow-up hit@5": share(t.rank is not None and t.rank <= 5 for t in self.followups),
            "latency p50 ms": statistics.median(latencies) if latencies else 0.0,
            "latency p95 ms": _percentile(latencies, 0.95),
        }


def _share(values: Iterable[bool]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# --- One run ------------------------------------------------------------------------------------


class Bench:
    """A tenant, its owner and a bot with the defaults a new tenant gets, and its knowledge."""

    def __init__(self, name: str) -> None:
        from bots.services import bot_profile_create
        from tenants.authentication import Principal
        from tenants.models import ApiToken
        from tenants.services import tenant_bootstrap
        from tenants.tenancy import tenant_scope

        created = tenant_bootstrap(
            name=f"Evaluation {name}",
            slug=f"eval-{name}-{time.monotonic_ns()}"[:100],
            owner_email=f"owner@{name}.eval.example",
            owner_password="evaluation-password",
        )
        self.tenant = created.tenant
        with tenant_scope(self.tenant):
            self.bot = bot_profile_create(tenant=self.tenant, name=f"{name} bot")
            token = ApiToken.objects.get(pk=created.api_token.pk)
        self.principal = Principal(tenant=self.tenant, user=created.owner, method="api_token", api_token=token)
        self.file_of_source: dict[str, str] = {}

    def add_page(self, evaluation_set: EvaluationSet, file: str) -> None:
        from sources.services import source_upload
        from tenants.tenancy import tenant_scope

        data = evaluation_set.path(file).read_bytes()
        with tenant_scope(self.tenant):  # the upload queues its ingestion, which runs inline here
            source = source_upload(
                tenant=self.tenant,
                bot_profile=self.bot,
                uploaded=SimpleUploadedFile(Path(file).name, data),
                name=file,
            )
        self.file_of_source[str(source.pk)] = file

    def add_topic(self, file: str, title: str, text: str) -> None:
        from sources.services import source_create, source_ingest_request
        from tenants.tenancy import tenant_scope

        with tenant_scope(self.tenant):
            name = f"{file} — {title}"[:200]
            source = source_create(
                tenant=self.tenant, bot_profile=self.bot, name=name, source_type="text", content=text
            )
            source_ingest_request(tenant=self.tenant, source=source)
        self.file_of_source[str(source.pk)] = file

    def counts(self) -> tuple[int, int]:
        from sources.models import Source
        from tenants.tenancy import tenant_scope

        with tenant_scope(self.tenant):
            sources = Source.objects.filter(bot_profile=self.bot)
            failed = [f"{s.name}: {s.error_message}" for s in sources if s.status != "ready"]
            if failed:
                raise RuntimeError("Evaluation documents failed to ingest:\n" + "\n".join(failed[:10]))
            return sources.count(), sum(source.chunk_count for source in sources)

    def carries_gold(self, question: Question, source_id: Any, content: str) -> bool:
        """Whether a chunk of this source, with this content, carries one of the question's gold passages."""
        file = self.file_of_source.get(str(source_id))
        return any(gold.file == file and holds_passage(content, gold) for gold in question.gold)

    def ask(self, question: Question, chat_id: Any = None) -> tuple[TurnResult, Any]:
        from chat import turns
        from chat.models import Message
        from chat.services import prepare_turn
        from sources.models import Chunk
        from tenants.tenancy import tenant_scope

        started = time.perf_counter()
        with tenant_scope(self.tenant):
            turn = prepare_turn(
                principal=self.principal, bot_profile_id=self.bot.pk, message=question.question, chat_id=chat_id
            )
        seen: list[Any] = []
        with _recording_retrievals(seen):
            response = async_to_sync(turns.answer)(turn)
        latency_ms = (time.perf_counter() - started) * 1000
        with tenant_scope(self.tenant):
            ids = [source["chunk_id"] for source in response["sources"]]
            contents = dict(Chunk.objects.filter(pk__in=ids).values_list("pk", "content"))
            outcome = Message.objects.get(pk=response["message"]["id"]).outcome
        rank = None
        for position, source in enumerate(response["sources"], start=1):
            if self.carries_gold(question, source["source_id"], contents.get(_uuid(source["chunk_id"]), "")):
                rank = position
                break
        answer = response["message"]["content"]
        result = TurnResult(
            id=question.id,
            question=question.question,
            rank=rank,
            refused=outcome == Message.Outcome.REFUSED,
            quoted=any(holds_passage(answer, gold) for gold in question.gold),
            latency_ms=latency_ms,
            answer=answer,
            searched=response["message"].get("searched_question", ""),
            candidates=[
                {
                    "dense": round(candidate.chunk.score, 4),
                    "coverage": round(candidate.coverage, 4),
                    "lexical": round(candidate.lexical, 4),
                    "gold": self.carries_gold(question, candidate.chunk.source_id, candidate.chunk.content),
                }
                for retrieval in seen
                for candidate in retrieval.candidates
            ],
        )
        return result, response["chat_id"]


@contextmanager
def _recording_retrievals(seen: list[Any]) -> Iterator[None]:
    """Keep what the turn's retrieval found (`chat.turns.retrieve`, wrapped while the turn runs)."""
    from chat import turns

    real = turns.retrieve

    async def recording(**kwargs: Any) -> Any:
        retrieval = await real(**kwargs)
        seen.append(retrieval)
        return retrieval

    turns.retrieve = recording
    try:
        yield
    finally:
        turns.retrieve = real


def _uuid(value: Any) -> Any:
    import uuid

    return uuid.UUID(str(value))


@dataclass
class Workload:
    """What one run asks, and of which documents."""

    files: list[str]
    questions: list[Question]
    offtopic: list[Question]
    followups: list[FollowUp]


def workload(evaluation_set: EvaluationSet, *, smoke: bool) -> Workload:
    questions = list(evaluation_set.questions)
    followups = list(evaluation_set.followups)
    offtopic = [Question(id=f"off-{i}", question=q, gold=()) for i, q in enumerate(offtopic_questions())]
    files = list(evaluation_set.files)
    if smoke:
        questions, followups, offtopic = questions[:SMOKE_QUESTIONS], followups[:1], offtopic[:SMOKE_QUESTIONS]
        needed = {g.file for q in [*questions, *(t for f in followups for t in (f.first, f.second))] for g in q.gold}
        files = [file for file in files if file in needed]
    return Workload(files=files, questions=questions, offtopic=offtopic, followups=followups)


def ingested_bench(evaluation_set: EvaluationSet, mode: str, files: list[str]) -> tuple[Bench, float]:
    """A fresh tenant and bot holding `files`, cut the `mode` way; and the seconds ingestion took."""
    bench = Bench(f"{evaluation_set.name}-{mode}")
    started = time.perf_counter()
    for file in files:
        if mode == "page":
            bench.add_page(evaluation_set, file)
        else:
            for section in sections(evaluation_set, file):
                bench.add_topic(file, section.title, section.text)
    return bench, time.perf_counter() - started


def run_set(evaluation_set: EvaluationSet, mode: str, *, smoke: bool) -> RunResult:
    work = workload(evaluation_set, smoke=smoke)
    bench, ingest_seconds = ingested_bench(evaluation_set, mode, work.files)
    source_count, chunk_count = bench.counts()
    result = RunResult(
        set=evaluation_set.name,
        mode=mode,
        documents=len(work.files),
        sources=source_count,
        chunks=chunk_count,
        ingest_seconds=ingest_seconds,
    )
    result.answerable = [bench.ask(question)[0] for question in work.questions]
    result.offtopic = [bench.ask(question)[0] for question in work.offtopic]
    for pair in work.followups:
        _, chat_id = bench.ask(pair.first)
        result.followups.append(bench.ask(pair.second, chat_id=chat_id)[0])
    return result


# --- The report ---------------------------------------------------------------------------------

COLUMNS = [
    "questions",
    "recall@1",
    "recall@5",
    "MRR@5",
    "quoted",
    "false refusals",
    "off-topic refused",
    "follow-up hit@5",
    "latency p50 ms",
    "latency p95 ms",
]


def _cell(value: float, column: str) -> str:
    if column == "questions":
        return str(int(value))
    if column.startswith("latency"):
        return f"{value:.0f}"
    return "-" if value != value else f"{value:.2f}"  # NaN: nothing of that kind in the run


def misses(result: RunResult) -> list[str]:
    """The targets this run does not reach."""
    metrics = result.metrics()
    found = []
    for name, (relation, target) in {**TARGETS["all"], **TARGETS[result.mode]}.items():
        value = metrics[name]
        if value != value:
            continue
        if (relation == ">=" and value < target) or (relation == "<=" and value > target):
            found.append(f"{name} {value:.2f} (target {relation} {target:.2f})")
    return found


def report(results: list[RunResult]) -> str:
    lines = [
        "| set | mode | docs | sources | chunks | ingest s | " + " | ".join(COLUMNS) + " |",
        "| --- " * (6 + len(COLUMNS)) + "|",
    ]
    for result in results:
        metrics = result.metrics()
        lines.append(
            f"| {result.set} | {result.mode} | {result.documents} | {result.sources} | {result.chunks} | "
            f"{result.ingest_seconds:.1f} | " + " | ".join(_cell(metrics[c], c) for c in COLUMNS) + " |"
        )
    lines.append("")
    for result in results:
        missed = misses(result)
        lines.append(f"{result.set}/{result.mode}: " + ("all targets met" if not missed else "; ".join(missed)))
    return "\n".join(lines)


def run_evaluation(
    *, sets: list[str] | None, modes: list[str] | None, smoke: bool = False, report_path: Path | None = None
) -> int:
    names = sets or (list(SMOKE_SETS) if smoke else available_sets())
    results = []
    for name in names:
        evaluation_set = load_set(name)
        for mode in modes or ["topic", "page"]:
            result = run_set(evaluation_set, mode, smoke=smoke)
            print(f"{name}/{mode}: {result.chunks} chunks, {len(result.answerable)} questions", flush=True)
            results.append(result)
    print()
    print(report(results))
    if report_path is not None:
        report_path.write_text(
            json.dumps([{**asdict(r), "metrics": r.metrics()} for r in results], indent=1, ensure_ascii=False)
        )
    return 0
