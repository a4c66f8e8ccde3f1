"""Supported ``anthropic`` versions."""

_instruments = ("anthropic >= 0.30, < 3",)
