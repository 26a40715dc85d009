"""Reading ZIP packages (.docx) without trusting what they say about themselves.

A ZIP's directory declares each member's size, but the compressed data may inflate to far more:
``zipfile`` stops at the declared size only *after* inflating a whole compressed block in one
call, and ``ZipFile.read`` asks for everything at once, so one lying member can allocate
gigabytes. Here members are read in small steps (each step inflates at most ``READ_STEP`` bytes),
never past a limit, and only with the two methods Office writes (stored and deflate: bzip2 and
LZMA inflate without any bound per step).
"""

from __future__ import annotations

import io
import zipfile

READ_STEP = 64 * 1024
SAFE_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
# What zipfile raises on damaged, encrypted or truncated archives.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    ValueError,
    EOFError,
    RuntimeError,
    NotImplementedError,
)


class MemberTooLargeError(Exception):
    """A member inflates (or says it does) to more than the caller's limit."""


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int) -> bytes:
    """The inflated content of one member, refused (``MemberTooLargeError``) beyond ``limit``
    bytes; at most ``READ_STEP`` bytes are inflated at a time. A member whose data does not match
    its declared size and CRC raises ``zipfile.BadZipFile``; an unsafe compression method raises
    ``NotImplementedError``.
    """
    if info.compress_type not in SAFE_METHODS:
        raise NotImplementedError(f"compression method {info.compress_type}")
    if info.file_size > limit:
        raise MemberTooLargeError(info.filename)
    parts: list[bytes] = []
    total = 0
    with archive.open(info) as stream:
        while chunk := stream.read(READ_STEP):
            total += len(chunk)
            if total > limit:  # zipfile stops at the declared size; this is the belt to its braces
                raise MemberTooLargeError(info.filename)
            parts.append(chunk)
    return b"".join(parts)


def repack(archive: zipfile.ZipFile, *, member_limit: int) -> bytes:
    """The archive rewritten uncompressed from members read with ``read_member``: a library that
    reads members whole (python-docx) then gets exactly the bytes that were checked. When a name
    occurs twice, the last occurrence wins, as in ``ZipFile.getinfo``."""
    members = {info.filename: info for info in archive.infolist() if not info.is_dir()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as packed:
        for name, info in members.items():
            packed.writestr(name, read_member(archive, info, limit=member_limit))
    return buffer.getvalue()
