"""The embedded stack behind `cofounder dev`: Temporal's dev server, the offline model,
the worker and the API as child processes that live and die together."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cofounder.settings import Settings
from cofounder.temporal import (
    SEARCH_ATTRIBUTE_KEYS,
    connect,
    ensure_search_attributes,
    temporal_binary,
)

# A child that dies more than MAX_RESTARTS times within RESTART_WINDOW seconds stops the stack.
MAX_RESTARTS = 3
RESTART_WINDOW = 60.0


# Only the worker calls the model; no other child gets the key.
NEEDS_MODEL_KEY = {"worker"}


class StackError(RuntimeError):
    """The stack cannot start; the message says why and what to do."""


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def ensure_port_free(host: str, port: int, what: str, variable: str) -> None:
    """Fail early, with the setting to change, when something already listens on a port."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise StackError(
                f"port {port} on {host} ({what}) is already in use: stop the process using it "
                f"or choose another port with {variable}"
            ) from None


def temporal_command(settings: Settings) -> list[str]:
    """`temporal server start-dev` with history in a SQLite file under the data dir."""
    host, port = split_address(settings.temporal_address)
    command = [
        str(temporal_binary()),
        "server",
        "start-dev",
        "--ip",
        host,
        "--port",
        str(port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--db-filename",
        str(settings.data_dir.resolve() / "temporal.db"),
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "warn",
    ]
    for key in SEARCH_ATTRIBUTE_KEYS:
        command += ["--search-attribute", f"{key.name}=Keyword"]
    return command


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen[bytes]
    restarts: list[float] = field(default_factory=list)


@dataclass
class Stack:
    """Child processes started in order and stopped in reverse, whatever happens."""

    settings: Settings
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    children: list[Child] = field(default_factory=list)

    @property
    def logs_dir(self) -> Path:
        return self.settings.data_dir.resolve() / "logs"

    @property
    def processes(self) -> list[tuple[str, subprocess.Popen[bytes]]]:
        return [(child.name, child.process) for child in self.children]

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        env = self.env
        if name not in NEEDS_MODEL_KEY:
            env = {key: value for key, value in env.items() if key != "ANTHROPIC_API_KEY"}
        with open(self.logs_dir / f"{name}.log", "ab") as log:
            return subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        process = self._spawn(name, command)
        self.children.append(Child(name, command, process))
        return process

    def restart_exited(self, say: Callable[[str], None]) -> None:
        """Start again any child that died; one that keeps dying stops the stack."""
        for child in self.children:
            if child.process.poll() is None:
                continue
            now = time.monotonic()
            child.restarts = [t for t in child.restarts if now - t < RESTART_WINDOW] + [now]
            if len(child.restarts) > MAX_RESTARTS:
                raise StackError(
                    f"{child.name} keeps exiting (code {child.process.returncode}); "
                    f"see {self.logs_dir / (child.name + '.log')}"
                )
            say(f"{child.name} exited with code {child.process.returncode}; restarting it")
            child.process = self._spawn(child.name, child.command)

    def start_cofounder(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        return self.start(name, [sys.executable, "-m", "cofounder", *args])

    def wait_until(self, what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            self.raise_if_exited()
            if time.monotonic() > deadline:
                raise StackError(
                    f"{what} did not become ready in {timeout:.0f}s; see {self.logs_dir}"
                )
            time.sleep(0.2)

    def raise_if_exited(self) -> None:
        for name, process in self.processes:
            if process.poll() is not None:
                raise StackError(
                    f"{name} exited with code {process.returncode}; "
                    f"see {self.logs_dir / (name + '.log')}"
                )

    def stop(self, timeout: float = 10.0) -> None:
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _name, process in reversed(self.processes):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.children.clear()


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def _search_attributes(settings: Settings) -> list[str]:
    client = await connect(settings)
    return await ensure_search_attributes(client, settings.temporal_namespace)


def start_stack(settings: Settings, say: Callable[[str], None]) -> Stack:
    """Check ports, migrate the database, then start every process and wait for readiness."""
    from cofounder.db.migrate import upgrade

    temporal_host, temporal_port = split_address(settings.temporal_address)
    ensure_port_free(temporal_host, temporal_port, "Temporal", "TEMPORAL_ADDRESS")
    ensure_port_free(
        temporal_host, settings.temporal_ui_port, "Temporal UI", "COFOUNDER_TEMPORAL_UI_PORT"
    )
    ensure_port_free(settings.api_host, settings.api_port, "API", "COFOUNDER_API_PORT")
    if settings.offline:
        ensure_port_free(
            "127.0.0.1",
            settings.offline_model_port,
            "offline model",
            "COFOUNDER_OFFLINE_MODEL_PORT",
        )

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    say(f"database ready ({settings.resolved_database_url.split('://')[0]})")

    stack = Stack(settings)
    stack.env["COFOUNDER_DATA_DIR"] = str(settings.data_dir.resolve())
    try:
        stack.start("temporal", temporal_command(settings))
        stack.wait_until("Temporal", lambda: port_open(temporal_host, temporal_port))
        added = asyncio.run(_search_attributes(settings))
        if added:
            say(f"registered search attributes {', '.join(added)} (new in this version)")
        say(
            f"Temporal dev server on {settings.temporal_address}, UI on http://{temporal_host}:{settings.temporal_ui_port}"
        )
        if settings.offline:
            stack.env["ANTHROPIC_BASE_URL"] = settings.model_base_url
            stack.start_cofounder("offline-model", "offline-model")
            stack.wait_until(
                "offline model", lambda: port_open("127.0.0.1", settings.offline_model_port)
            )
        stack.start_cofounder("worker", "worker")
        stack.start_cofounder("api", "api")
        stack.wait_until(
            "API", lambda: http_ok(f"http://{settings.api_host}:{settings.api_port}/readyz")
        )
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        say(f"API on {api_url} (docs at {api_url}/docs); logs in {stack.logs_dir}")
    except BaseException:
        stack.stop()
        raise
    return stack
