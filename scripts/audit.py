#!/usr/bin/env python3
"""Audit requirements.lock: pip-audit online against a reviewed allowlist, and always a
reviewed offline advisory list (security/), so CI keeps a gate when no vulnerability database
is reachable. Never passes silently: an online audit that could not run says so and why.

Exit codes: 0 clean, 1 a vulnerability or a violated advisory, 2 a malformed security file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from packaging.version import Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ROOT = Path(__file__).resolve().parent.parent
MAX_REVIEW_AGE = dt.timedelta(days=180)
ONLINE_TIMEOUT_S = 180
SCANNED = {".py", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".json", ".sh", ""}
"""Files searched for an advisory's ``forbid`` text (no suffix: scripts, the Makefile)."""


M = TypeVar("M", bound=BaseModel)


class AuditFileError(Exception):
    """A security file is missing, malformed, or out of date; names the file and entry."""


class Advisory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    package: str = Field(min_length=1)
    summary: str = Field(min_length=1)
    fixed: str | None = None
    forbid: str | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> Advisory:
        if (self.fixed is None) == (self.forbid is None):
            raise ValueError("give exactly one of fixed (a version) or forbid (a text)")
        if self.fixed is not None:
            Version(self.fixed)
        return self


class Advisories(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reviewed: dt.date
    advisory: list[Advisory]


class Accepted(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    package: str = Field(min_length=1)
    reason: str = Field(min_length=20)
    reviewed: dt.date


class Allowlist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    accept: list[Accepted] = Field(default_factory=list)


def _load(path: Path, model: type[M]) -> M:
    try:
        return model.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise AuditFileError(f"{path}: cannot read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise AuditFileError(f"{path}: not valid TOML ({exc})") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise AuditFileError(f"{path}: {where}: {err['msg']}") from exc


def load_allowlist(path: Path, today: dt.date) -> list[Accepted]:
    """The reviewed allowlist; an entry whose review is older than 180 days is an error."""
    entries = _load(path, Allowlist).accept
    for entry in entries:
        if today - entry.reviewed > MAX_REVIEW_AGE:
            raise AuditFileError(
                f"{path}: {entry.id} ({entry.package}) was reviewed on {entry.reviewed}, "
                f"more than {MAX_REVIEW_AGE.days} days ago: review it again"
            )
    return entries


def load_advisories(path: Path) -> Advisories:
    return _load(path, Advisories)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, str]:
    """``name==version`` pins of a pip-compile / uv lock, by normalised name."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        found = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if found:
            pins[normalise(found.group(1))] = found.group(2)
    return pins


def offline_findings(
    pins: Mapping[str, str], advisories: Sequence[Advisory], sources: Mapping[str, str]
) -> list[str]:
    """What the lock (``pins``) and our files (``sources``: path -> text) violate."""
    findings: list[str] = []
    for advisory in advisories:
        pinned = pins.get(normalise(advisory.package))
        fixed = advisory.fixed
        if fixed is not None and pinned is not None and Version(pinned) < Version(fixed):
            findings.append(
                f"{advisory.package}=={pinned} is below {fixed} ({advisory.id}: {advisory.summary})"
            )
        if advisory.forbid is not None:
            for path, text in sorted(sources.items()):
                if advisory.forbid in text:
                    findings.append(
                        f"{path} names {advisory.forbid!r} ({advisory.id}: {advisory.summary})"
                    )
    return findings


def project_sources(root: Path) -> dict[str, str]:
    """The tracked code and config files (git's list; outside git, every file not under a
    dot-folder), with security/ and docs left out."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True
        ).stdout.decode()
        names = list(filter(None, listed.split("\0")))
    except (OSError, subprocess.CalledProcessError):
        names = [
            str(p.relative_to(root))
            for p in root.rglob("*")
            if not any(part.startswith(".") for part in p.relative_to(root).parts)
        ]
    sources: dict[str, str] = {}
    for name in names:
        path = root / name
        if name.startswith("security/") or path.suffix not in SCANNED or not path.is_file():
            continue
        try:
            sources[name] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
    return sources


def read_pip_audit(report: str) -> tuple[list[tuple[str, str, list[str]]], str | None]:
    """pip-audit's JSON as (package==version, id, aliases) per vulnerability, and why the
    audit is incomplete (None when every dependency was audited)."""
    data = json.loads(report)
    found: list[tuple[str, str, list[str]]] = []
    skipped: list[str] = []
    for dep in data.get("dependencies", []):
        if dep.get("skip_reason"):
            skipped.append(dep["skip_reason"])
            continue
        for vuln in dep.get("vulns", []):
            found.append(
                (f"{dep['name']}=={dep['version']}", vuln["id"], list(vuln.get("aliases", [])))
            )
    if skipped:
        return found, f"{len(skipped)} dependencies were not audited, e.g. {skipped[0]!r}"
    return found, None


def not_allowed(
    found: Sequence[tuple[str, str, list[str]]], allowlist: Sequence[Accepted]
) -> list[tuple[str, str]]:
    """(package==version, id) of each vulnerability that no allowlist entry accepts; an entry
    matches the package and the id or one of its aliases."""
    accepted = {(normalise(a.package), a.id) for a in allowlist}
    return [
        (pin, vuln)
        for pin, vuln, aliases in found
        if not any((normalise(pin.split("==")[0]), name) in accepted for name in (vuln, *aliases))
    ]


def run_pip_audit(lock: Path, timeout_s: float) -> tuple[str | None, str | None]:
    """pip-audit's JSON report, or None and why it could not run."""
    command = [
        *(sys.executable, "-m", "pip_audit"),
        *("-r", str(lock), "--no-deps", "--disable-pip", "--progress-spinner", "off"),
        *("--format", "json"),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None, f"pip-audit got no answer within {timeout_s:g} s"
    if done.stdout.strip().startswith("{"):
        return done.stdout, None
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return None, f"pip-audit failed (exit {done.returncode}): {last[:300]}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock")
    parser.add_argument("--allowlist", type=Path, default=ROOT / "security/allowlist.toml")
    parser.add_argument("--advisories", type=Path, default=ROOT / "security/advisories.toml")
    parser.add_argument("--offline", action="store_true", help="skip the online audit")
    parser.add_argument("--timeout", type=float, default=ONLINE_TIMEOUT_S)
    args = parser.parse_args(argv)
    today = dt.date.today()
    try:
        allowlist = load_allowlist(args.allowlist, today)
        advisories = load_advisories(args.advisories)
        pins = parse_lock(args.lock.read_text(encoding="utf-8"))
    except (AuditFileError, OSError) as exc:
        print(f"audit: error: {exc}", file=sys.stderr)
        return 2
    failures = offline_findings(pins, advisories.advisory, project_sources(ROOT))
    age = (today - advisories.reviewed).days
    print(
        f"audit: offline: {len(advisories.advisory)} reviewed advisories "
        f"(reviewed {advisories.reviewed}, {age} days ago) against {len(pins)} pins: "
        f"{len(failures)} violated"
    )
    if args.offline:
        print("audit: ONLINE AUDIT SKIPPED: --offline was given")
    else:
        report, why = run_pip_audit(args.lock, args.timeout)
        found, incomplete = read_pip_audit(report) if report is not None else ([], why)
        refused = not_allowed(found, allowlist)
        for pin, vuln, _ in found:
            if (pin, vuln) not in refused:
                print(f"audit: online: {pin} {vuln}: accepted (security/allowlist.toml)")
        failures.extend(f"{pin}: {vuln} is not on the allowlist" for pin, vuln in refused)
        if incomplete is not None:
            print(
                f"audit: ONLINE AUDIT SKIPPED: {incomplete}; the offline advisories above are"
                " the only gate for what was not audited"
            )
        else:
            print(f"audit: online: pip-audit checked every pin; {len(found)} vulnerabilities")
    for failure in failures:
        print(f"audit: FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
