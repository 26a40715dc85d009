"""`python -m evaluation calibrate`: the data behind the refusal decision (chat/evidence.py).

It reads a report of `make eval` (`--report FILE`), where every answerable and off-topic turn
keeps each chunk its search returned (the bot's top_k) with its evidence: the cosine similarity
(`dense`), the IDF-weighted share of the question's words it holds (`coverage`), its BM25
(`lexical`), and whether it carries a gold passage. The decision's constants are then chosen on
these records: the largest share of off-topic questions refused while at most MAX_FALSE_REFUSALS
of the answerable ones are — first on all sets together (what chat/evidence.py uses), then leaving
each set out in turn and measuring it with the constants fitted on the others, which is what to
expect on documents the constants never saw.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MAX_FALSE_REFUSALS = 0.02
DEFAULT_THRESHOLD = 0.30
MARGINS = np.round(np.arange(0.0, 0.26, 0.01), 2)
ALLOWANCES = np.round(np.arange(0.0, 0.26, 0.01), 2)
COVERAGES = np.round(np.arange(0.05, 1.0, 0.05), 2)


def records_of(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answerable and off-topic turns of an evaluation report (`make eval` `--report`), each
    with the candidates its search returned."""
    return [
        {"set": result["set"], "mode": result["mode"], "kind": kind, "id": turn["id"], "candidates": turn["candidates"]}
        for result in results
        for kind, key in (("answerable", "answerable"), ("offtopic", "offtopic"))
        for turn in result[key]
    ]


@dataclass(frozen=True)
class Fit:
    margin: float
    allowance: float
    coverage: float
    false_refusals: float
    offtopic_refused: float
    gold_kept: float  # answerable questions whose retrieved gold chunk passes


def _arrays(records: list[dict[str, Any]], depth: int = 5) -> tuple[np.ndarray, ...]:
    dense = np.full((len(records), depth), -1.0)
    coverage = np.zeros((len(records), depth))
    gold = np.zeros((len(records), depth), dtype=bool)
    for row, record in enumerate(records):
        for column, candidate in enumerate(record["candidates"][:depth]):
            dense[row, column], coverage[row, column] = candidate["dense"], candidate["coverage"]
            gold[row, column] = candidate["gold"]
    answerable = np.array([record["kind"] == "answerable" for record in records], dtype=bool)
    return dense, coverage, gold, answerable


def fits(
    records: list[dict[str, Any]],
    grid: Iterable[tuple[float, float, float]] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> list[Fit]:
    """Each (margin, allowance, coverage) of `grid` (default: the whole grid), measured on `records`."""
    dense, coverage, gold, answerable = _arrays(records)
    has_gold = gold.any(axis=1) & answerable
    found = []
    for margin, allowance, needed in grid or itertools.product(MARGINS, ALLOWANCES, COVERAGES):
        passed = (dense >= threshold + margin) | ((dense >= threshold - allowance) & (coverage >= needed))
        refused = ~passed.any(axis=1)
        found.append(
            Fit(
                margin=float(margin),
                allowance=float(allowance),
                coverage=float(needed),
                false_refusals=float(refused[answerable].mean()),
                offtopic_refused=float(refused[~answerable].mean()),
                gold_kept=float((passed & gold).any(axis=1)[has_gold].mean()) if has_gold.any() else 1.0,
            )
        )
    return found


def best(candidates: list[Fit]) -> Fit:
    """Most off-topic questions refused within the false-refusal budget; then the most gold kept;
    then the gentlest constants (closest to the plain threshold)."""
    allowed = [fit for fit in candidates if fit.false_refusals <= MAX_FALSE_REFUSALS] or candidates
    return max(allowed, key=lambda f: (f.offtopic_refused, f.gold_kept, -f.margin, -f.allowance))


def measure(fit: Fit, records: list[dict[str, Any]]) -> Fit:
    return fits(records, [(fit.margin, fit.allowance, fit.coverage)])[0]


def _row(label: str, fit: Fit) -> str:
    return (
        f"| {label} | {fit.margin:.2f} | {fit.allowance:.2f} | {fit.coverage:.2f} | {fit.false_refusals:.3f} | "
        f"{fit.offtopic_refused:.3f} | {fit.gold_kept:.3f} |"
    )


def calibrate(*, report: Path) -> int:
    records = records_of(json.loads(report.read_text()))
    from chat import evidence

    current = fits(records, [(evidence.MEANING_MARGIN, evidence.WORDS_ALLOWANCE, evidence.COVERAGE_NEEDED)])[0]
    everything = fits(records)
    # Meaning alone: the words never let a chunk through (coverage above 1 is never reached).
    dense_only = best(fits(records, [(margin, 0.0, 2.0) for margin in MARGINS]))
    chosen = best(everything)
    print("| fitted on | margin | allowance | coverage | false refusals | off-topic refused | gold kept |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(_row("all sets, chat/evidence.py as it stands", current))
    print(_row("all sets, meaning alone (best plain cosine floor)", dense_only))
    print(_row("all sets, best", chosen))
    names = sorted({record["set"] for record in records})
    if len(names) < 2:
        return 0
    print()
    print("Leaving each set out: fitted on the others, measured on it.")
    print("| held out | margin | allowance | coverage | false refusals | off-topic refused | gold kept |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        others = [record for record in records if record["set"] != name]
        held_out = [record for record in records if record["set"] == name]
        fitted = best(fits(others))
        print(_row(name, measure(fitted, held_out)))
    return 0
