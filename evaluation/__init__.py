"""Answer quality, measured: evaluation sets and the runner behind `make eval` (docs/quality.md)."""
