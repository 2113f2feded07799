"""The three error families, and the one place an exception is sorted into one.

Every error Roundtable raises on purpose belongs to one family, and each family is handled
in one way:

* ``ConfigError``: a configuration mistake (a setting, a role card, a missing file). Raised at
  start-up, before any work, naming the setting or file that is wrong.
* ``ModelError``: the model misbehaved (an invalid pick, an empty or malformed reply). Recorded
  as an ``error`` event and retried a bounded number of times; never fatal on its own.
* ``InfraError``: an infrastructure fault (endpoint unreachable, disk full, store locked).
  Surfaced to the person clearly; what was committed before it stays committed.

``family_of`` decides the family with ``isinstance`` (a subclass belongs to its base's family);
anything that is not ours counts as model misbehaviour. The policy every run mode follows:

* What is retried: a structured call of the manager (a pick, a plan, a comparison) that is
  refused or fails, up to its attempts; then the run falls back (a rule pick, a debate, an
  answer without a comparison). Replies are not retried: a failed reply fails its turn.
* What fails a turn (a stage, a branch): an exception from a role's model, whatever its
  family; it is recorded as an ``error`` event with the family and the run decides what next
  (a debate lets another role speak, a pipeline stops, a panel goes on without the branch).
* What stops the run: a role's ``config`` failure (``stops_run``), since a bad key or a
  missing model will not fix itself; and any error raised by our own code outside a model
  call (a transcript that cannot be written), which is surfaced, not recorded as a turn.

Does not own: the one-line message of a failure (``conversations.control.describe_failure``
recovers it from AutoGen's wrapping), nor what a mode does after a failed turn.
"""

from typing import Literal

from roundtable.common.secrets import error_text

Family = Literal["config", "model", "infra"]
"""The families as written in transcripts (``transcripts.events.ErrorFamily``)."""


class RoundtableError(Exception):
    """Base of all errors Roundtable raises on purpose; its message is one clear line, and
    its text never holds a configured secret (``secrets.error_text``)."""

    def __str__(self) -> str:
        return error_text(super().__str__())


class ConfigError(RoundtableError):
    """A configuration mistake: raised early, names the setting or file that is wrong."""


class ModelError(RoundtableError):
    """The model misbehaved: recorded, retried a bounded number of times."""


class InfraError(RoundtableError):
    """An infrastructure fault: surfaced clearly, nothing committed is lost."""


FAMILIES: dict[type[RoundtableError], Family] = {
    ConfigError: "config",
    InfraError: "infra",
    ModelError: "model",
}
"""Each family's base class; ``family_of`` checks them with ``isinstance``."""


def family_of(exc: BaseException) -> Family:
    """The family of ``exc``: its base class's, and ``model`` for anything not ours."""
    for base, family in FAMILIES.items():
        if isinstance(exc, base):
            return family
    return "model"


def stops_run(family: Family) -> bool:
    """Whether a turn that failed with ``family`` ends the whole run (see the policy above)."""
    return family == "config"
