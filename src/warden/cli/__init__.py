"""The `warden` command line: parses, calls the library, renders."""

from warden.cli.main import cli, main

__all__ = ["cli", "main"]
