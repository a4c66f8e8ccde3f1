"""Supported ``openai`` versions."""

_instruments = ("openai >= 1.26, < 4",)
