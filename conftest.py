"""Test-session wiring shared by darooghe_tests/ and darooghe_assets_tests/.

The tests never touch a running demo: they run on their own home and ports (DAROOGHE_TEST_* to
change them). Services are started on first use by the `stack` fixture (idempotent, so parallel
pytest runs share one test stack) and stopped at the end only when DAROOGHE_TEST_STOP_SERVICES=1,
which `make test` sets.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parent
TEST_ENV = {
    "DAROOGHE_HOME": os.environ.get("DAROOGHE_TEST_HOME", str(_REPO / ".darooghe-test")),
    "DAROOGHE_KAFKA_PORT": os.environ.get("DAROOGHE_TEST_KAFKA_PORT", "19092"),
    "DAROOGHE_KAFKA_CONTROLLER_PORT": os.environ.get("DAROOGHE_TEST_KAFKA_CONTROLLER_PORT", "19093"),
    "DAROOGHE_MONGO_PORT": os.environ.get("DAROOGHE_TEST_MONGO_PORT", "27117"),
    "DAROOGHE_POSTGRES_PORT": os.environ.get("DAROOGHE_TEST_POSTGRES_PORT", "15432"),
    "DAROOGHE_DAGSTER_PORT": os.environ.get("DAROOGHE_TEST_DAGSTER_PORT", "13000"),
    "DAROOGHE_MONITOR_PORT": os.environ.get("DAROOGHE_TEST_MONITOR_PORT", "19108"),
    "DAROOGHE_PROMETHEUS_PORT": os.environ.get("DAROOGHE_TEST_PROMETHEUS_PORT", "19090"),
    "DAROOGHE_MONGO_DB": "darooghe_test",
    # Tests write fresh topics and temporary directories through Dagster run config.
    "DAROOGHE_RUN_CONFIG_TOPICS": "*",
    "DAROOGHE_RUN_CONFIG_ROOTS": tempfile.gettempdir(),
}
for _name in ("DAROOGHE_KAFKA_BOOTSTRAP", "DAROOGHE_MONGO_URI", "DAROOGHE_KAFKA_HOST", "DAROOGHE_MONGO_HOST"):
    os.environ.pop(_name, None)
os.environ.update(TEST_ENV)


#: Fixtures that need the local services or a Spark session: a test that uses one (directly or
#: through another fixture) gets the marker, so `make test-unit` (`-m "not integration and not
#: spark"`) runs exactly the tests that need neither.
_MARKER_OF_FIXTURE = {"stack": "integration", "spark": "spark"}


def pytest_collection_modifyitems(items):
    for item in items:
        for fixture, marker in _MARKER_OF_FIXTURE.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)


@pytest.fixture(scope="session")
def settings():
    from darooghe.config import load_settings

    return load_settings()


@pytest.fixture(scope="session")
def stack(settings):
    """The test stack (Kafka + PostgreSQL + FerretDB + topics), up for the whole session."""
    from darooghe.services.stack import running

    with running(settings, stop_after=os.environ.get("DAROOGHE_TEST_STOP_SERVICES") == "1"):
        yield settings


@pytest.fixture(scope="module")
def scratch_db(stack):
    """A database of the module's own on the test stack, dropped after the module."""
    from darooghe_tests.chart_seed import scratch_database

    with scratch_database(stack) as db:
        yield db


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A DAROOGHE_HOME of the test's own, so the PID, progress and enabled files it writes touch
    nothing else."""
    from darooghe.config import load_settings

    monkeypatch.setenv("DAROOGHE_HOME", str(tmp_path / "home"))
    settings = load_settings()
    settings.run_dir.mkdir(parents=True)
    return settings


@pytest.fixture(scope="session")
def spark(settings):
    """One Spark session per test run (starting one costs seconds)."""
    from darooghe.spark import spark_session

    session = spark_session("darooghe-tests", settings, ui=True)
    yield session
    session.stop()


@pytest.fixture()
def mongo_db(stack):
    """The test database on the test FerretDB, emptied before each test that asks for it."""
    from pymongo import MongoClient

    client = MongoClient(stack.mongo_uri)
    db = client[stack.mongo_db]
    for name in db.list_collection_names():
        db.drop_collection(name)
    yield db
    client.close()


@pytest.fixture()
def unique_topic(stack):
    """Create a fresh topic for one test; returns a factory (name prefix, partitions) -> name."""
    import uuid

    from darooghe.kafka_io import ensure_topics
    from darooghe.topics import Topic

    def make(prefix: str = "test", partitions: int = 1) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:10]}"
        ensure_topics([Topic(name, partitions, "test topic")], stack)
        return name

    return make
