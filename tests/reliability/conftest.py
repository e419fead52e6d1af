"""Fixtures for the reliability suites (helpers in ``reliability_helpers``)."""

from __future__ import annotations

from typing import Iterator

import pytest
from reliability_helpers import OwnServer


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnServer]:
    """A ``chroma run`` the module's tests may freeze, kill and restart (each leaves it running)."""
    server = OwnServer(tmp_path_factory.mktemp("own-server"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


