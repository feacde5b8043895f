"""Settings: defaults, validation, and `load_settings()` naming each bad variable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from settings import (
    DEV_ADMIN_TOKEN,
    Environment,
    Settings,
    SettingsError,
    SmsProviderKind,
    load_settings,
)

GOOD_TOKEN = "a-production-secret-of-32-chars!"
GOOD_DB = "postgresql://o2o:secret@db.internal:5432/o2o"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No setting from the outer environment (conftest sets DATABASE_URL and STATE_DIR) and
    no `.env` file: each test sees only the variables it sets."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(tmp_path)  # `.env` is read from the working directory
    yield


def error_message(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    return str(info.value)


def test_settings_error_is_a_system_exit() -> None:
    assert issubclass(SettingsError, SystemExit)


def test_defaults_load() -> None:
    s = load_settings()
    assert s.ENVIRONMENT is Environment.DEVELOPMENT
    assert s.DATABASE_URL == ""
    assert s.TEMPORAL_ADDRESS == "127.0.0.1:7233"
    assert s.API_PORT == 8000
    assert s.ADMIN_TOKEN == DEV_ADMIN_TOKEN
    assert s.TRUSTED_PROXIES == ["127.0.0.1/32", "::1/128"]
    assert s.SMS_PROVIDER is SmsProviderKind.SINK


def test_good_values_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_PORT", "9001")
    monkeypatch.setenv("DATABASE_URL", GOOD_DB)
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")
    s = load_settings()
    assert (s.API_PORT, s.DATABASE_URL, s.TEMPORAL_ADDRESS) == (
        9001,
        GOOD_DB,
        "temporal.internal:7233",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("API_PORT", "70000"),
        ("API_PORT", "0"),
        ("API_PORT", "eighty"),
        ("SMTP_PORT", "65536"),
        ("DATABASE_URL", "mysql://x"),
        ("DATABASE_URL", "sqlite:///o2o.db"),
        ("TEMPORAL_ADDRESS", "nohostport"),
        ("TEMPORAL_ADDRESS", ":7233"),
        ("TEMPORAL_ADDRESS", "temporal:"),
        ("TEMPORAL_ADDRESS", "temporal:port"),
        ("TRUSTED_PROXIES", "not-an-ip"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,not-an-ip"),
        ("ADMIN_TOKEN", "short"),
        ("ENVIRONMENT", "staging"),
        ("NOTICE_MAX_ATTEMPTS", "0"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    message = error_message(monkeypatch, **{name: value})
    assert message.startswith("Invalid configuration")
    assert f"{name}:" in message
    # Only the bad variable is named.
    named = [line.strip().split(":")[0] for line in message.splitlines()[1:]]
    assert named == [name]


def test_every_bad_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    message = error_message(
        monkeypatch, API_PORT="70000", DATABASE_URL="mysql://x", ADMIN_TOKEN="short"
    )
    for name in ("API_PORT", "DATABASE_URL", "ADMIN_TOKEN"):
        assert f"{name}:" in message


def test_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("api_port", "9002")
    assert load_settings().API_PORT == 9002


def test_production_refuses_the_dev_admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    message = error_message(monkeypatch, ENVIRONMENT="production", DATABASE_URL=GOOD_DB)
    assert "ADMIN_TOKEN" in message
    # Also when the dev token is given explicitly.
    message = error_message(monkeypatch, ADMIN_TOKEN=DEV_ADMIN_TOKEN)
    assert "ADMIN_TOKEN" in message


def test_production_refuses_a_missing_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    message = error_message(monkeypatch, ENVIRONMENT="production", ADMIN_TOKEN=GOOD_TOKEN)
    assert "DATABASE_URL" in message
    assert "ADMIN_TOKEN" not in message


def test_production_with_its_own_token_and_database_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("ADMIN_TOKEN", GOOD_TOKEN)
    monkeypatch.setenv("DATABASE_URL", GOOD_DB)
    monkeypatch.setenv("SECRET_KEY", "a-production-secret-key-of-32-chars-or-more")
    s = load_settings()
    assert s.ENVIRONMENT is Environment.PRODUCTION
    assert s.ADMIN_TOKEN == GOOD_TOKEN


def test_development_accepts_the_dev_token_and_no_database_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "development")
    s = load_settings()
    assert (s.ADMIN_TOKEN, s.DATABASE_URL) == (DEV_ADMIN_TOKEN, "")


def test_production_names_every_bad_variable_not_just_the_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The production checks name every problem at once: ENVIRONMENT=production with nothing
    # else set (dev ADMIN_TOKEN and no DATABASE_URL) names both, so one restart fixes both.
    message = error_message(monkeypatch, ENVIRONMENT="production")
    assert "ADMIN_TOKEN" in message
    assert "DATABASE_URL" in message


def test_twilio_needs_account_and_token(monkeypatch: pytest.MonkeyPatch) -> None:
    message = error_message(monkeypatch, SMS_PROVIDER="twilio", SMS_ACCOUNT="AC123")
    assert "SMS_TOKEN" in message
    monkeypatch.setenv("SMS_TOKEN", "tok")
    assert load_settings().SMS_PROVIDER is SmsProviderKind.TWILIO


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.0/8, 192.168.1.1 ,::1", ["10.0.0.0/8", "192.168.1.1", "::1"]),
        ("10.0.0.1", ["10.0.0.1"]),
        ("10.0.0.0/8,,172.16.0.0/12,", ["10.0.0.0/8", "172.16.0.0/12"]),
    ],
)
def test_trusted_proxies_from_a_comma_separated_string(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", value)
    proxies = load_settings().TRUSTED_PROXIES
    assert proxies == expected


def test_a_dotenv_file_in_the_working_directory_is_read(tmp_path: Path) -> None:
    # The autouse fixture made tmp_path the working directory.
    (tmp_path / ".env").write_text("API_PORT=9003\n", encoding="utf-8")
    assert load_settings().API_PORT == 9003
    (tmp_path / ".env").write_text("API_PORT=70000\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="API_PORT"):
        load_settings()


def test_production_refuses_the_dev_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    message = error_message(
        monkeypatch, ENVIRONMENT="production", ADMIN_TOKEN=GOOD_TOKEN, DATABASE_URL=GOOD_DB
    )
    assert "SECRET_KEY: set a secret of your own in production" in message
    assert "ADMIN_TOKEN" not in message
