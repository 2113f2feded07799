"""Question sets for ``roundtable eval``: a YAML file of questions, validated by pydantic.

Owns the file's shape (``QuestionSet``) and reading it: bounded, and any problem one line
``file:line: field 'questions.2.id': message``. Does not own running or scoring them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from roundtable.common.errors import ConfigError
from roundtable.common.yamlfile import line_of, read_yaml

MAX_FILE_BYTES = 1024 * 1024
"""A question set larger than this is refused before it is parsed."""

Id = str


class Question(BaseModel):
    """One question; ``reference`` is its checkable answer (a number or a short phrase)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    question: str = Field(min_length=1, max_length=8000)
    reference: str | None = Field(default=None, min_length=1, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=16)


class QuestionSet(BaseModel):
    """The whole file: a list of questions with distinct ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    questions: list[Question] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _distinct(self) -> QuestionSet:
        seen: set[str] = set()
        for question in self.questions:
            if question.id in seen:
                raise ValueError(f"id {question.id!r} is used twice")
            seen.add(question.id)
        return self


def load_questions(path: Path) -> QuestionSet:
    """Read and check a question set; a problem is a ConfigError naming file, line, field."""
    raw, node = read_yaml(path, MAX_FILE_BYTES, "question file")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: a question set is a mapping with a 'questions' list")
    try:
        return QuestionSet.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "questions"
        message = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{path}:{line_of(node, loc)}: field {field!r}: {message}") from exc
