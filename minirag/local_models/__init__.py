"""Models that run in-process with no network and no API key: the offline default providers.

- :mod:`minirag.local_models.embedder` — all-MiniLM-L6-v2 (384-d) on onnxruntime; cheap to import.
- :mod:`minirag.local_models.provider` — the LiteLLM custom provider ``local`` (``local/minilm``); importing it
  imports LiteLLM, which takes seconds, so only the model gateway imports it (and calls ``ensure_registered()``).
"""
