"""Adapters to other training frameworks, each an optional extra: :mod:`.lightning` (Lightning)."""
