"""The `email` settings: defaults, ports by security, pairs, and a password kept hidden."""

import pytest

from telportal.config import ConfigError, EmailSecurity, load_config


def test_off_by_default_with_the_usual_ports() -> None:
    settings = load_config().email
    assert settings.enabled is False
    assert (settings.security, settings.port) == (EmailSecurity.STARTTLS, 587)
    assert load_config(env={"TELPORTAL_EMAIL__SECURITY": "tls"}).email.port == 465
    assert load_config(env={"TELPORTAL_EMAIL__SECURITY": "none"}).email.port == 25
    assert load_config(env={"TELPORTAL_EMAIL__SMTP_PORT": "2525"}).email.port == 2525


def test_the_password_never_shows() -> None:
    config = load_config(
        env={"TELPORTAL_EMAIL__USERNAME": "tp", "TELPORTAL_EMAIL__PASSWORD": "hunter2-secret"}
    )
    assert config.email.password is not None
    assert config.email.password.get_secret_value() == "hunter2-secret"
    assert "hunter2-secret" not in repr(config) and "hunter2-secret" not in str(config.email)
    with pytest.raises(ConfigError) as bad:
        load_config(
            env={"TELPORTAL_EMAIL__PASSWORD": "hunter2-secret", "TELPORTAL_EMAIL__SMTP_PORT": "0"}
        )
    assert "hunter2-secret" not in str(bad.value)


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"TELPORTAL_EMAIL__USERNAME": "tp"}, "username and password go together"),
        ({"TELPORTAL_EMAIL__TIMEZONE": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"TELPORTAL_EMAIL__SECURITY": "ssl"}, "setting 'email.security'"),
        ({"TELPORTAL_EMAIL__TENANT_LANGUAGES": '{"acme": "fr"}'}, "email.tenant_languages.acme"),
        ({"TELPORTAL_EMAIL__FROM_ADDRESS": "nobody"}, "setting 'email.from_address'"),
        (
            {
                "TELPORTAL_EMAIL__RETRY_FIRST_SECONDS": "600",
                "TELPORTAL_EMAIL__RETRY_MAX_SECONDS": "60",
            },
            "retry_first_seconds must not exceed retry_max_seconds",
        ),
    ],
)
def test_bad_settings_are_named(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_config(env=env)
