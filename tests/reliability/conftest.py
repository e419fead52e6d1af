"""Fixtures for the reliability suites (helpers in ``reliability_helpers``)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from reliability_helpers import OwnServer


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[OwnServer]:
    """A fresh ``chroma run`` this test may freeze, kill and restart."""
    server = OwnServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


