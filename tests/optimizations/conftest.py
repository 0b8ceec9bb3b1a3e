"""Fixtures shared by the job-lifecycle tests."""

import pytest


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
