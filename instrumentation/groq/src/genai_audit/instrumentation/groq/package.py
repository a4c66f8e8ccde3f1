"""Supported ``groq`` versions."""

_instruments = ("groq >= 1.0, < 2",)
