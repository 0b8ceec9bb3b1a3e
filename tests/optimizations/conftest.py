"""Fixtures shared by the job-lifecycle tests."""

import pytest

from tests.optimizations.workers import Worker, running_broker


@pytest.fixture
def broker(tmp_path):
    """A real file-system broker (a module may override this fixture to parametrize the
    kind, as test_faults does for Redis)."""
    with running_broker("filesystem", tmp_path) as url:
        yield url


@pytest.fixture
def worker(broker, tmp_path):
    """Starts real Celery analysis workers on ``broker``; each is stopped at the end."""
    started = []

    def start():
        process = Worker(broker, tmp_path)
        started.append(process)
        process.wait_ready()
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def health_server():
    """Targets whose GET /health answers as told (see tests.analyzers.test_cooldown.Health)."""
    from tests.analyzers.test_cooldown import Health

    made = []

    def make(answers):
        made.append(Health(answers))
        return made[-1]

    yield make
    for server in made:
        server.close()
