"""Supported ``openai`` versions."""

_instruments = ("openai >= 1.0, < 4",)
