"""The one error type the CLI and server turn into ``error: …`` (exit 2) or a 4xx reply."""


class KwsError(Exception):
    """Bad input: a file, model, manifest or setting that cannot be used."""
