"""Evaluation sets: documents, questions with gold passages, follow-up pairs, off-topic questions.

A set is one JSON file in ``evaluation/sets/``::

    {
      "name": "postgresql",
      "description": "...",
      "documents": {"root": "package:postgresql-doc-15/html" | "repo", "files": ["sql-createindex.html", ...]},
      "questions": [{"id": "pg-001", "question": "...", "gold": [{"file": "...", "quote": "..."}]}],
      "followups": [{"id": "pg-f01", "turns": [{"question": "...", "gold": [...]}, {"question": "...", "gold": [...]}]}]
    }

``offtopic.json`` holds ``{"questions": [...]}``: questions none of the sets' documents answer, asked of
every set. A gold ``quote`` is a passage copied from the document as it reads (one or two sentences
that answer the question); it is matched on words, so line breaks and spacing do not matter.
A question is answered by any of its gold passages.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

SETS_DIR = Path(__file__).resolve().parent / "sets"
REPO = Path(__file__).resolve().parent.parent
PACKAGE_DOCS = Path("/usr/share/doc")
WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The text as lowercase word tokens: what passages are compared on."""
    return WORD.findall(text.lower())


@dataclass(frozen=True)
class Gold:
    file: str
    quote: str


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    gold: tuple[Gold, ...]


@dataclass(frozen=True)
class FollowUp:
    id: str
    first: Question
    second: Question


@dataclass(frozen=True)
class EvaluationSet:
    name: str
    description: str
    root: str
    files: tuple[str, ...]
    questions: tuple[Question, ...]
    followups: tuple[FollowUp, ...]

    @property
    def package(self) -> str | None:
        """The Debian package the documents come from, or None for this repository's own files."""
        return self.root.removeprefix("package:").split("/", 1)[0] if self.root.startswith("package:") else None

    def path(self, file: str) -> Path:
        if self.root == "repo":
            return REPO / file
        return PACKAGE_DOCS / self.root.removeprefix("package:") / file


def _question(raw: dict, fallback_id: str) -> Question:
    return Question(
        id=raw.get("id", fallback_id),
        question=raw["question"],
        gold=tuple(Gold(file=g["file"], quote=g["quote"]) for g in raw.get("gold", [])),
    )


def load_set(name: str) -> EvaluationSet:
    raw = json.loads((SETS_DIR / f"{name}.json").read_text())
    return EvaluationSet(
        name=raw["name"],
        description=raw.get("description", ""),
        root=raw["documents"]["root"],
        files=tuple(raw["documents"]["files"]),
        questions=tuple(_question(q, f"{name}-{i}") for i, q in enumerate(raw.get("questions", []))),
        followups=tuple(
            FollowUp(
                id=f["id"],
                first=_question(f["turns"][0], f"{f['id']}-1"),
                second=_question(f["turns"][1], f"{f['id']}-2"),
            )
            for f in raw.get("followups", [])
        ),
    )


def available_sets() -> list[str]:
    return sorted(path.stem for path in SETS_DIR.glob("*.json") if path.stem != "offtopic")


def offtopic_questions() -> list[str]:
    return list(json.loads((SETS_DIR / "offtopic.json").read_text())["questions"])
