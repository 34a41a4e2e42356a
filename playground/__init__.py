"""Prompt Playground: the library behind the app and the `playground` command."""

__version__ = "0.1.0"
