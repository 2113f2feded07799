"""Settings: defaults need nothing; a TOML file and ROUNDTABLE_* variables, env winning."""

from __future__ import annotations

from pathlib import Path

import pytest

from roundtable.common.errors import ConfigError
from roundtable.conversations import load_settings


def test_defaults_need_no_configuration(data_dir: Path) -> None:
    settings = load_settings()
    assert settings.data_dir == data_dir
    assert settings.endpoints["default"].kind == "embedded"
    assert settings.endpoint_for("critic") == ("default", settings.endpoints["default"])
    assert settings.budget.max_turns == 8
    assert settings.transcripts_dir == data_dir / "transcripts"


def test_a_toml_file_per_role_endpoints_and_env_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "roundtable.toml"
    config.write_text(
        '[endpoints.ollama]\nkind = "openai"\nbase_url = "http://127.0.0.1:11434/v1"\n'
        'model = "llama3.2"\ncontext_window = 8192\n\n[roles]\ncritic = "ollama"\n\n'
        "[budget]\nmax_turns = 6\n"
    )
    monkeypatch.setenv("ROUNDTABLE_CONFIG", str(config))
    monkeypatch.setenv("ROUNDTABLE_BUDGET__MAX_TOKENS", "1234")
    settings = load_settings()
    name, endpoint = settings.endpoint_for("critic")
    assert (name, endpoint.model, endpoint.base_url) == (
        "ollama",
        "llama3.2",
        "http://127.0.0.1:11434/v1",
    )
    assert settings.window_of(endpoint) == 8192
    assert settings.endpoint_for("writer")[0] == "default"
    assert settings.budget.max_turns == 6  # from the file
    assert settings.budget.max_tokens == 1234  # from the environment
    assert load_settings(context_window=1024).window_of(endpoint) == 1024


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('[roles]\ncritic = "nowhere"\n', "no endpoint named 'nowhere'"),
        ('[roles]\n"Big Judge" = "default"\n', "'Big Judge' is not a role name"),
        ('cards_dir = "/tmp"\n', "cards_dir is replaced by team"),
        ("surprise = 1\n", "surprise"),
        ("[budget\n", "settings file"),
    ],
)
def test_bad_settings_name_what_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, needle: str
) -> None:
    config = tmp_path / "roundtable.toml"
    config.write_text(toml)
    monkeypatch.setenv("ROUNDTABLE_CONFIG", str(config))
    with pytest.raises(ConfigError, match=needle):
        load_settings()


def test_a_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ROUNDTABLE_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file"):
        load_settings()
