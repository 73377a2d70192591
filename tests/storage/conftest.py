from __future__ import annotations

from tests.support.moto import moto_server  # noqa: F401 - the fixture
