"""Secrets never reach a log line: vendors' key shapes and the configured secrets are masked."""

from __future__ import annotations

import logging

import pytest
import structlog
from pydantic import SecretStr

from cofounder.logging import MASK, redact, register_secrets
from cofounder.settings import Settings
from tests.log_capture import json_logs

PEM = "\n".join(
    [
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAx3Jm0",
        "q9Z1bQ==",
        "-----END RSA PRIVATE KEY-----",
    ]
)
SHAPES = {
    "anthropic": "sk-ant-api03-AbCdEf0123456789_xyz-QRS",
    "e2b": "e2b_0123456789abcdef0123456789abcdef01234567",
    "stripe live": "sk_live_51HxYzAbCdEfGh0123",
    "stripe test": "sk_test_51HxYzAbCdEfGh0123",
    "stripe restricted live": "rk_live_51HxYzAbCdEfGh0123",
    "stripe restricted test": "rk_test_51HxYzAbCdEfGh0123",
    "stripe webhook": "whsec_AbCdEf0123456789AbCdEf",
    "github personal": "ghp_" + "a1B2" * 9,
    "github oauth": "gho_" + "a1B2" * 9,
    "github user-to-server": "ghu_" + "a1B2" * 9,
    "github installation": "ghs_" + "a1B2" * 9,
    "github refresh": "ghr_" + "a1B2" * 9,
    "github fine-grained": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "pem private key": PEM,
    "pem, cut short": PEM.split("-----END")[0],
}


@pytest.mark.parametrize("secret", SHAPES.values(), ids=SHAPES.keys())
def test_each_secret_shape_is_masked(secret: str) -> None:
    masked = redact(f"calling with {secret} now")
    assert secret not in masked and MASK in masked
    assert masked.startswith("calling with ")


def test_ordinary_text_is_left_alone() -> None:
    text = "build-3f2a sk-ant e2b sandbox ghs run task_queue=cofounder-builds BEGIN PRIVATE"
    assert redact(text) == text


@pytest.mark.parametrize("secret", SHAPES.values(), ids=SHAPES.keys())
def test_structlog_and_stdlib_lines_are_masked_however_nested(secret: str) -> None:
    with json_logs() as logs:
        structlog.get_logger("t").info(
            f"calling {secret}", headers={"auth": [f"Bearer {secret}"]}, args=(secret, 3)
        )
        logging.getLogger("temporalio.worker").warning("token %s refused", secret)

    assert secret not in logs.text and "\\n".join(secret.splitlines()) not in logs.text
    structured, foreign = logs.lines()
    assert structured["headers"] == {"auth": [f"Bearer {MASK}"]} and structured["args"][1] == 3
    assert foreign["event"].startswith(f"token {MASK}")  # a key cut short is masked to the end


def test_configured_secrets_are_masked_by_value() -> None:
    canary = "plain-clerk-secret-4417"  # no vendor shape: only its registration masks it
    settings = Settings(clerk_secret_key=SecretStr(canary), _env_file=None)  # type: ignore[call-arg]
    register_secrets(settings)
    with json_logs() as logs:
        structlog.get_logger("t").warning("refused", key=canary)
        logging.getLogger("httpx").error("GET /?k=%s", canary)

    assert canary not in logs.text
    assert [line.get("key", line["event"]) for line in logs.lines()] == [MASK, f"GET /?k={MASK}"]


class Leaky(Exception):
    """An error whose message quotes what it was given."""


def test_exception_text_is_masked_in_json_and_on_the_console(
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = SHAPES["anthropic"]

    def fail(api_key: str) -> None:
        raise Leaky(f"refused key {api_key}")

    with json_logs() as logs:
        try:
            fail(secret)
        except Leaky:
            structlog.get_logger("t").exception("model call failed")
            logging.getLogger("temporalio.activity").exception("activity failed")
    assert secret not in logs.text  # messages and the frames' locals
    assert all("exception" in line for line in logs.lines()) and MASK in logs.text

    _console_exception(fail, secret)
    shown = capsys.readouterr().err
    assert "Leaky: refused key" in shown and secret not in shown


def _console_exception(fail: object, secret: str) -> None:
    from cofounder.logging import configure_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(json=False)
    try:
        try:
            fail(secret)  # type: ignore[operator]
        except Leaky:
            structlog.get_logger("t").exception("model call failed")
    finally:
        root.handlers, root.level = saved[0], saved[1]
        structlog.reset_defaults()
