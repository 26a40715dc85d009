"""`python -m evaluation`: run the evaluation, or inspect a set while writing it.

python -m evaluation run [--set NAME ...] [--mode page|topic ...] [--smoke]   # `make eval`
python -m evaluation validate [NAME ...]     # every gold passage is in its document (and in one topic)
python -m evaluation show NAME FILE [--sections]   # a document as MiniRAG extracts it
python -m evaluation calibrate REPORT        # the refusal decision's constants, fitted on a run's report
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _setup_django() -> Path:
    """A throwaway embedded MiniRAG (SQLite, local Qdrant, offline models, tasks inline)."""
    from bench import embedded_environment

    data_dir = Path(tempfile.mkdtemp(prefix="minirag-eval-"))
    os.environ.update({**embedded_environment(data_dir, None), "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    import django

    django.setup()
    return data_dir


def _validate(names: list[str]) -> int:
    from evaluation.corpus import document_text, longest_run, sections
    from evaluation.sets import available_sets, load_set, offtopic_questions, words

    problems = 0
    for name in names or available_sets():
        evaluation_set = load_set(name)
        questions = [*evaluation_set.questions]
        for followup in evaluation_set.followups:
            questions += [followup.first, followup.second]
        ids = [question.id for question in questions]
        for duplicate in sorted({i for i in ids if ids.count(i) > 1}):
            print(f"{name}: duplicate id {duplicate}")
            problems += 1
        for question in questions:
            if not question.gold:
                print(f"{name} {question.id}: no gold passage")
                problems += 1
            for gold in question.gold:
                if gold.file not in evaluation_set.files:
                    print(f"{name} {question.id}: {gold.file} is not among the set's documents")
                    problems += 1
                    continue
                quote_words = len(words(gold.quote))
                topics = sections(evaluation_set, gold.file)
                if longest_run(gold.quote, document_text(evaluation_set, gold.file)) < quote_words:
                    print(f"{name} {question.id}: quote not found word for word in {gold.file}: {gold.quote[:80]!r}")
                    problems += 1
                elif not any(longest_run(gold.quote, topic.text) == quote_words for topic in topics):
                    print(f"{name} {question.id}: quote spans two topics of {gold.file}: {gold.quote[:80]!r}")
                    problems += 1
        print(
            f"{name}: {len(evaluation_set.files)} documents, {len(evaluation_set.questions)} questions, "
            f"{len(evaluation_set.followups)} follow-up pairs"
        )
    print(f"off-topic: {len(offtopic_questions())} questions")
    print("OK" if not problems else f"{problems} problem(s)")
    return 1 if problems else 0


def _show(name: str, file: str, by_section: bool) -> int:
    from evaluation.corpus import document_text, sections
    from evaluation.sets import load_set

    evaluation_set = load_set(name)
    if not by_section:
        print(document_text(evaluation_set, file))
        return 0
    for section in sections(evaluation_set, file):
        print(f"===== {section.title}\n{section.text}\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="measure the pipeline on the sets (make eval)")
    run.add_argument("--set", action="append", dest="sets", help="a set name (default: all)")
    run.add_argument("--mode", action="append", dest="modes", choices=["page", "topic"], help="default: both")
    run.add_argument("--smoke", action="store_true", help="a few questions per set, for make test")
    run.add_argument("--report", type=Path, help="also write the results as JSON to this file")
    validate = commands.add_parser("validate", help="check that every gold passage is in its document")
    validate.add_argument("names", nargs="*")
    calibrate = commands.add_parser("calibrate", help="fit the refusal decision's constants on a report of `run`")
    calibrate.add_argument("report", type=Path, help="the JSON written by `run --report`")
    show = commands.add_parser("show", help="print a document as MiniRAG extracts it")
    show.add_argument("name")
    show.add_argument("file")
    show.add_argument("--sections", action="store_true", help="cut at headings, as the topic mode does")
    args = parser.parse_args()

    if args.command == "calibrate":
        from evaluation.calibration import calibrate

        return calibrate(report=args.report)
    _setup_django()
    if args.command == "validate":
        return _validate(args.names)
    if args.command == "show":
        return _show(args.name, args.file, args.sections)
    from django.core.management import call_command

    from evaluation.runner import run_evaluation

    call_command("migrate", verbosity=0)
    return run_evaluation(sets=args.sets, modes=args.modes, smoke=args.smoke, report_path=args.report)


if __name__ == "__main__":
    sys.exit(main())
