"""What every MiniRAG management command shares: help text laid out as written, one wording for
secrets printed once, and domain errors turned into a one-line `CommandError` (exit status 1,
no traceback)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter, OutputWrapper

from minirag.errors import ApplicationError

SHOWN_ONCE = "shown only this once; store it now."


class HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the command's `help` kept as written (paragraphs, examples)."""


class ReadableHelpMixin:
    """Mix into a command (before `BaseCommand`) so its multi-line `help` is not re-wrapped."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("formatter_class", HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)  # type: ignore[misc]


class MiniRAGCommand(ReadableHelpMixin, BaseCommand):
    """Base of MiniRAG's own commands."""


def write_secret(stdout: OutputWrapper, label: str, value: str) -> None:
    """Print a secret the way every command does: the value, then that it will not be shown again."""
    stdout.write(f"{label}: {value}")
    stdout.write(f"The {label} is {SHOWN_ONCE}")


def command_error(exc: ApplicationError | ValidationError, *, options: Mapping[str, str] | None = None) -> CommandError:
    """A one-line CommandError for a domain or validation error. `options` maps field names to the
    command-line options that set them, so the message names what the operator typed."""
    options = options or {}
    if isinstance(exc, ApplicationError):
        if exc.errors and len(exc.errors) == 1:
            (name, messages), *_ = exc.errors.items()
            if name in options:
                return CommandError(f"{options[name]}: {' '.join(messages)}")
        return CommandError(exc.detail)
    if hasattr(exc, "error_dict"):
        parts = []
        for name, messages in exc.message_dict.items():
            text = " ".join(messages)
            parts.append(text if name == "__all__" else f"{options.get(name, name)}: {text}")
        return CommandError("; ".join(parts))
    return CommandError(" ".join(exc.messages))
