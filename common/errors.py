"""The three error families.

Every error Roundtable raises on purpose belongs to one family, and each family is handled
in one way:

* ``ConfigError``: a configuration mistake (a setting, a role card, a missing file). Raised at
  start-up, before any work, naming the setting or file that is wrong.
* ``ModelError``: the model misbehaved (an invalid pick, an empty or malformed reply). Recorded
  as an ``error`` event and retried a bounded number of times; never fatal on its own.
* ``InfraError``: an infrastructure fault (endpoint unreachable, disk full, store locked).
  Surfaced to the person clearly; what was committed before it stays committed.
"""


class RoundtableError(Exception):
    """Base of all errors Roundtable raises on purpose; its message is one clear line."""


class ConfigError(RoundtableError):
    """A configuration mistake: raised early, names the setting or file that is wrong."""


class ModelError(RoundtableError):
    """The model misbehaved: recorded, retried a bounded number of times."""


class InfraError(RoundtableError):
    """An infrastructure fault: surfaced clearly, nothing committed is lost."""
