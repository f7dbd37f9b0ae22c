"""Settings: defaults, the .env file, and a clear message for every invalid value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from intake_support import SHOPIFY_SECRET, STOREFRONT_KEY, write_spec
from storesync.settings import (
    DEFAULT_MAX_BODY_BYTES,
    SANDBOX_SECRETS,
    SettingsError,
    load_settings,
    read_env_file,
)

MakeEnv = Callable[..., dict[str, str]]


@pytest.fixture
def env(tmp_path: Path) -> MakeEnv:
    """Return a factory of environments for a Shopify project in ``tmp_path``."""

    def build(platform: str = "shopify", **values: str) -> dict[str, str]:
        base = {"DATA_DIR": str(tmp_path / "var"),
                "SPEC_DIR": str(write_spec(tmp_path / "spec", platform))}
        base.update(values)
        return base

    return build


def problems_of(environ: dict[str, str]) -> dict[str, str]:
    """Return the message of each invalid variable, by variable name."""
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    return {problem.variable: str(problem) for problem in caught.value.problems}


def test_defaults(env: MakeEnv, tmp_path: Path) -> None:
    settings = load_settings(env())
    assert settings.port == 8000
    assert settings.host == "127.0.0.1"
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES
    assert settings.dedup_window_hours == 72
    assert settings.storefront_timestamp_tolerance_seconds == 300
    assert settings.redis_url is None
    assert settings.queue_path == tmp_path / "var" / "queue.sqlite3"
    assert settings.state_path == tmp_path / "var" / "state.sqlite3"
    assert settings.accepted_platforms == ("shopify", "storefront")
    assert settings.sandbox is True
    assert settings.queue_sqlite_synchronous == "FULL"
    assert settings.worker_queue_sqlite_synchronous == "NORMAL"


def test_queue_synchronous_normal(env: MakeEnv) -> None:
    assert load_settings(env(QUEUE_SQLITE_SYNCHRONOUS="normal")).queue_sqlite_synchronous == \
        "NORMAL"


def test_worker_queue_synchronous_full(env: MakeEnv) -> None:
    settings = load_settings(env(WORKER_QUEUE_SQLITE_SYNCHRONOUS="full"))
    assert settings.worker_queue_sqlite_synchronous == "FULL"
    assert settings.queue_sqlite_synchronous == "FULL"


def test_sandbox_placeholder_secrets(env: MakeEnv) -> None:
    settings = load_settings(env())
    assert settings.sandbox_secret_platforms == ("shopify", "storefront")
    assert settings.shopify_webhook_secrets == (SANDBOX_SECRETS["shopify"].encode(),)
    assert settings.woocommerce_webhook_secrets == ()


def test_secrets_split_on_commas(env: MakeEnv) -> None:
    settings = load_settings(env(SHOPIFY_WEBHOOK_SECRETS=f" {SHOPIFY_SECRET} , second-not-real,"))
    assert settings.shopify_webhook_secrets == (SHOPIFY_SECRET.encode(), b"second-not-real")
    assert settings.sandbox_secret_platforms == ("storefront",)


def test_live_mode_requires_secrets(env: MakeEnv) -> None:
    found = problems_of(env(HUBSPOT_ACCESS_TOKEN="test-token-not-real"))
    assert "SHOPIFY_WEBHOOK_SECRETS" in found
    assert "STOREFRONT_WEBHOOK_SECRETS" in found
    assert "WOOCOMMERCE_WEBHOOK_SECRETS" not in found
    assert "is not set, and this project receives shopify webhooks" in found[
        "SHOPIFY_WEBHOOK_SECRETS"]


def test_sandbox_rejects_public_host(env: MakeEnv) -> None:
    found = problems_of(env(HOST="0.0.0.0"))
    assert "'0.0.0.0' is not a loopback address" in found["HOST"]
    assert "set HOST=127.0.0.1" in found["HOST"]


def test_live_mode_allows_public_host(env: MakeEnv) -> None:
    settings = load_settings(env(HOST="0.0.0.0", HUBSPOT_ACCESS_TOKEN="test-token-not-real",
                                 SHOPIFY_WEBHOOK_SECRETS=SHOPIFY_SECRET,
                                 STOREFRONT_WEBHOOK_SECRETS=SANDBOX_SECRETS["storefront"]))
    assert settings.host == "0.0.0.0"
    assert settings.sandbox is False


@pytest.mark.parametrize(("name", "value", "words"), [
    ("PORT", "80a", "'80a' is not a whole number"),
    ("PORT", "70000", "70000 is outside the allowed range 1 to 65535"),
    ("MAX_BODY_BYTES", "10", "10 is outside the allowed range"),
    ("DEDUP_WINDOW_HOURS", "0", "0 is outside the allowed range 1 to 720"),
    ("STOREFRONT_TIMESTAMP_TOLERANCE_SECONDS", "five", "'five' is not a whole number"),
    ("WORKER_METRICS_PORT", "-1", "-1 is outside the allowed range"),
    ("LOG_LEVEL", "verbose", "'VERBOSE' is not a log level"),
    ("REDIS_KEY_PREFIX", "has space", "may only contain letters"),
    ("QUEUE_SQLITE_SYNCHRONOUS", "off", "'OFF' is not a synchronous mode"),
    ("WORKER_QUEUE_SQLITE_SYNCHRONOUS", "off", "'OFF' is not a synchronous mode"),
])
def test_invalid_value_named(env: MakeEnv, name: str, value: str, words: str) -> None:
    found = problems_of(env(**{name: value}))
    assert list(found) == [name]
    assert words in found[name]
    assert "Fix: " in found[name]


def test_all_problems_listed_at_once(env: MakeEnv) -> None:
    found = problems_of(env(PORT="x", LOG_LEVEL="loud", DEDUP_WINDOW_HOURS="-5"))
    assert set(found) == {"PORT", "LOG_LEVEL", "DEDUP_WINDOW_HOURS"}


def test_redis_url_not_echoed(env: MakeEnv) -> None:
    found = problems_of(env(REDIS_URL="http://user:hunter2-not-real@127.0.0.1:6379"))
    assert "does not start with redis://" in found["REDIS_URL"]
    assert "hunter2-not-real" not in found["REDIS_URL"]


def test_bad_storefront_secret_not_echoed(env: MakeEnv) -> None:
    secret = "whsec_!!not-base64-not-real!!"
    found = problems_of(env(STOREFRONT_WEBHOOK_SECRETS=secret))
    assert "secret 1 the part after 'whsec_' is not valid base64" in found[
        "STOREFRONT_WEBHOOK_SECRETS"]
    assert secret not in found["STOREFRONT_WEBHOOK_SECRETS"]


def test_placeholder_secret_rejected(env: MakeEnv) -> None:
    found = problems_of(env(SHOPIFY_WEBHOOK_SECRETS="replace-with-the-app-client-secret"))
    assert "still the placeholder from .env.example" in found["SHOPIFY_WEBHOOK_SECRETS"]


def test_missing_spec_dir(env: MakeEnv, tmp_path: Path) -> None:
    found = problems_of(env(SPEC_DIR=str(tmp_path / "nowhere")))
    assert "mapping.yaml' does not exist" in found["SPEC_DIR"]


def test_spec_without_platform(env: MakeEnv, tmp_path: Path) -> None:
    folder = tmp_path / "odd-spec"
    folder.mkdir()
    (folder / "mapping.yaml").write_text("version: 1\nplatform: magento\n", encoding="utf-8")
    found = problems_of(env(SPEC_DIR=str(folder)))
    assert "names no store platform" in found["SPEC_DIR"]


def test_data_dir_is_file(env: MakeEnv, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    found = problems_of(env(DATA_DIR=str(blocker)))
    assert "is a file, not a folder" in found["DATA_DIR"]


def test_relative_paths_from_service_dir(env: MakeEnv, tmp_path: Path) -> None:
    environ = env()
    environ["DATA_DIR"] = "state-here"
    settings = load_settings(environ, service_dir=tmp_path)
    assert settings.data_dir == tmp_path / "state-here"


def test_repr_hides_secrets(env: MakeEnv) -> None:
    settings = load_settings(env(SHOPIFY_WEBHOOK_SECRETS=SHOPIFY_SECRET,
                                 REDIS_URL="redis://:pw-not-real@127.0.0.1:6379/0"))
    text = repr(settings)
    assert SHOPIFY_SECRET not in text
    assert "pw-not-real" not in text
    assert STOREFRONT_KEY.decode() not in text


def test_env_file_read_and_environment_wins(env: MakeEnv, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# local settings\nexport PORT=8100\nLOG_LEVEL='debug'\n"
                        "STORE_ID=store-a # a comment\n\nMAX_BODY_BYTES=\"4096\"\n",
                        encoding="utf-8")
    settings = load_settings(env(PORT="8200"), env_file=env_file)
    assert settings.port == 8200
    assert settings.log_level == "DEBUG"
    assert settings.store_id == "store-a"
    assert settings.max_body_bytes == 4096


def test_env_file_bad_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=8000\nthis line has no equals sign\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        read_env_file(env_file)
    assert str(caught.value.problems[0]).startswith(".env line 2: is not in the form NAME=value.")


def test_missing_env_file_ignored(env: MakeEnv, tmp_path: Path) -> None:
    assert load_settings(env(), env_file=tmp_path / "absent.env").port == 8000
