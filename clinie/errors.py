"""Errors with stable codes (as spaCy's ``Errors``): the code is what logs, dead-letter reasons and tests match on."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # input (permanent: dead-letter, never retried)
    NOT_JSON = "E001"
    NOT_DOCUMENT_REFERENCE = "E002"
    INVALID_RESOURCE = "E003"
    NO_TEXT = "E004"
    BAD_BASE64 = "E005"
    UNSUPPORTED_CONTENT_TYPE = "E006"
    NOTE_TOO_LARGE = "E007"
    BAD_ENCODING = "E008"
    UNEXPECTED = "E009"  # a bug met this input: dead-lettered with the exception type so nothing blocks or is lost
    NOTE_TIMED_OUT = "E010"  # Triton was up, but this note's inference failed or timed out on every attempt
    # An interchange record (JSONL document, annotation) that is not valid: raised as InvalidInputError, so
    # permanent and dead-lettered like the E0xx codes. Its number predates this grouping and stays (codes are
    # stable); it is not a model error.
    BAD_INTERCHANGE = "E103"
    # model (ModelError: the model directory or label map is missing or inconsistent)
    MODEL_NOT_FOUND = "E101"
    LABEL_MAP_MISMATCH = "E102"
    # annotated-data conversion (clinie convert): file and line number, never the note text
    BAD_ANNOTATION = "E104"  # a malformed brat .ann line, CoNLL line or PHEE record
    OFFSET_MISMATCH = "E105"  # an annotation's offsets or tokens do not match the note text
    BAD_LABEL_MAP = "E106"  # a --label-map file that is missing, not TOML, or inconsistent
    # infrastructure (transient: retried)
    BACKEND_UNAVAILABLE = "E201"
    STORAGE_UNAVAILABLE = "E202"
    BACKEND_REQUEST_FAILED = "E203"  # Triton answers health checks but this request failed/timed out: bounded retries
    # command line input and configuration (the CLI prints one line and exits non-zero)
    INPUT_NOT_FOUND = "E301"
    INPUT_UNREADABLE = "E302"
    NO_INPUT = "E303"
    BAD_SETTINGS = "E304"
    OUTPUT_UNWRITABLE = "E305"
    STACK_FAILED = "E306"  # a local stack component (clinie stack up / demo) did not start
    BAD_TRAIN_CONFIG = "E307"  # a training config that is not TOML or not a valid TrainConfig


class ClinieError(Exception):
    """Base error. ``code`` is stable; ``reason`` is a short machine-readable slug."""

    transient: bool = False

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"[{code.value}] {message}")
        self.code = code
        self.message = message

    @property
    def reason(self) -> str:
        return self.code.name.lower()


class InvalidInputError(ClinieError):
    """The input can never be processed as it is (dead-letter it)."""


class ModelError(ClinieError):
    """A model directory or label map is missing or inconsistent."""


class TransientError(ClinieError):
    """A dependency is down or slow; the same input may succeed later (retry, don't commit)."""

    transient = True
