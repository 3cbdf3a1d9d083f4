"""Exceptions raised by hf_seqinterp.

Every error a user can trigger with bad input is one of these, raised before any tensor work starts,
with a message that names the offending value and says how to fix it.
"""

from __future__ import annotations


class SeqInterpError(Exception):
    """Base class of all hf_seqinterp errors."""


class InvalidInputError(SeqInterpError, ValueError):
    """An input text is empty, not a string, or otherwise unusable."""


class InputTooLongError(InvalidInputError):
    """A text is longer than the model accepts and truncation was turned off."""


class UnknownMethodError(SeqInterpError, KeyError):
    """The requested explanation method is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class UnknownTargetError(SeqInterpError, ValueError):
    """The requested target class id or label name does not exist for this model."""


class InvalidParameterError(SeqInterpError, ValueError):
    """A method parameter is unknown or has an invalid value."""


class UnsupportedModelError(SeqInterpError, TypeError):
    """The model lacks something the chosen method needs (inputs_embeds, attention weights, ...)."""


class MissingDependencyError(SeqInterpError, ImportError):
    """A feature needs an optional package that is not installed; the message names the extra to install."""


class OutputExistsError(SeqInterpError, FileExistsError):
    """An output file or folder exists and overwriting it was not asked for."""


class HubError(SeqInterpError):
    """Pushing explanations to, or loading them from, the Hugging Face Hub failed for good
    (authentication, permission, missing repository, or retries exhausted)."""


class OutputFolderBusyError(SeqInterpError):
    """Another live run owns the output folder (its `.lock` is held)."""


class CorruptShardError(InvalidInputError):
    """A shard of an `explain_dataset` output folder does not match its recorded checksum or row
    count, or cannot be read; it is never merged."""


class ModelNotFoundError(SeqInterpError, OSError):
    """A model name is a local path that does not exist, or a Hub id that cannot be fetched (offline,
    no network, or no such repository)."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a resumable dataset run: `rows_done` of `rows` source rows are saved."""

    def __init__(self, rows_done: int, rows: int):
        super().__init__(f"{rows_done} of {rows} rows done")
        self.rows_done = rows_done
        self.rows = rows
