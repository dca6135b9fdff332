import subprocess
import sys
from pathlib import Path

import pytest

from telportal.app import media_config
from telportal.config import ConfigError, ListenAddress, SiteRole, load_config


def test_defaults() -> None:
    cfg = load_config()
    assert cfg.http_listen == ListenAddress("127.0.0.1", 8080)
    assert cfg.sip_listen == ListenAddress("0.0.0.0", 5060)
    assert cfg.db_url.startswith("sqlite+aiosqlite:///") and cfg.db_url.endswith("telportal.db")
    assert set(cfg.site.roles) == set(SiteRole)


def test_the_interpreted_core_switch_is_not_a_setting() -> None:
    # Read at import by telportal.compiled; `telportal serve` must not refuse it.
    assert load_config(env={"TELPORTAL_INTERPRETED": "1"}) == load_config(env={})


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(
        "http_listen: 127.0.0.1:9000\n"
        "sip_listen: 127.0.0.1:5070\n"
        "log_level: debug\n"
        "site:\n  name: bj1\n  region: beijing\n  roles: [access]\n"
    )
    env = {
        "TELPORTAL_SIP_LISTEN": "[::1]:5080",
        "TELPORTAL_SITE__REGION": "shanghai",
        "PATH": "/bin",
    }
    cfg = load_config(f, env=env, overrides={"log_level": "error", "data_dir": None})
    assert cfg.http_listen == ListenAddress("127.0.0.1", 9000)  # file
    assert cfg.sip_listen == ListenAddress("::1", 5080)  # env over file
    assert str(cfg.sip_listen) == "[::1]:5080"
    assert cfg.log_level == "error"  # flag over file
    assert cfg.site.name == "bj1" and cfg.site.region == "shanghai"
    assert cfg.site.roles == (SiteRole.ACCESS,)


def test_config_path_from_environment(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("auth:\n  token_ttl_seconds: 600\n")
    assert load_config(env={"TELPORTAL_CONFIG": str(f)}).auth.token_ttl_seconds == 600


def test_idle_port_pairs_reach_the_media_engine(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("media:\n  idle_port_pairs: 0\n")
    env = {"TELPORTAL_MEDIA__PORT_REUSE_AFTER_SECONDS": "5"}
    media = media_config(load_config(f, env=env))
    assert (media.idle_port_pairs, media.port_reuse_after) == (0, 5.0)
    defaults = media_config(load_config(env={}))
    assert (defaults.idle_port_pairs, defaults.port_reuse_after) == (4096, 1.0)


def test_list_setting_from_env_json() -> None:
    cfg = load_config(env={"TELPORTAL_SITE__ROLES": '["center", "control"]'})
    assert cfg.site.roles == (SiteRole.CENTER, SiteRole.CONTROL)


@pytest.mark.parametrize(
    ("yaml_text", "env", "expected"),
    [
        ("htp_listen: 1.2.3.4:80\n", {}, "setting 'htp_listen' (from config file"),
        ("http_listen: localhost\n", {}, "setting 'http_listen' (from config file"),
        ("http_listen: 1.2.3.4:99999\n", {}, "port must be between 1 and 65535, got 99999"),
        ("site:\n  roles: [kitchen]\n", {}, "setting 'site.roles.0'"),
        ("auth:\n  token_ttl_seconds: 5\n", {}, "setting 'auth.token_ttl_seconds'"),
        (
            "",
            {"TELPORTAL_SIP_LISTN": "x"},
            "'sip_listn' (from environment variable TELPORTAL_SIP_LISTN): unknown setting",
        ),
        ("", {"TELPORTAL_LOG_LEVEL": "loud"}, "from environment variable TELPORTAL_LOG_LEVEL"),
        ("", {"TELPORTAL_AUTO_MIGRATE": "perhaps"}, "setting 'auto_migrate'"),
        ("media:\n  idle_port_pairs: -1\n", {}, "setting 'media.idle_port_pairs'"),
        ("media:\n  port_reuse_after_seconds: 99\n", {}, "'media.port_reuse_after_seconds'"),
        ("sip:\n  dns_servers: [dns.example]\n", {}, "nameserver 'dns.example' is not an IP"),
        ("sip:\n  dns_servers: ['127.0.0.1:99999']\n", {}, "'127.0.0.1:99999'"),
    ],
)
def test_bad_values_name_the_key_and_source(
    tmp_path: Path, yaml_text: str, env: dict[str, str], expected: str
) -> None:
    f = tmp_path / "t.yaml"
    f.write_text(yaml_text)
    with pytest.raises(ConfigError) as exc:
        load_config(f, env=env)
    assert expected in str(exc.value)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("http_listen: 1.2.3.4:80\nsite: [unclosed\n")
    with pytest.raises(ConfigError, match=r"t\.yaml line \d+ column \d+"):
        load_config(f)


def test_non_mapping_and_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(f)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")


def test_flag_error_names_the_option() -> None:
    with pytest.raises(ConfigError, match="from option --http-listen"):
        load_config(overrides={"http_listen": "nope"})


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "telportal", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_serve_with_bad_config_exits_nonzero_without_traceback(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("sip_listen: 0.0.0.0:70000\nmystery: 1\n")
    r = _cli("serve", "--config", str(f))
    assert r.returncode == 2
    assert "sip_listen" in r.stderr and "mystery" in r.stderr and "unknown setting" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    r = _cli("serve", "--http-listen", "127.0.0.1:0", "--data-dir", str(tmp_path))
    assert r.returncode == 2 and "--http-listen" in r.stderr and "Traceback" not in r.stderr
