"""The matcher conformance suite, run against `CompiledMatcher`."""

from __future__ import annotations

import pytest

from engine.matcher import CompiledMatcher

from .matcher_conformance import *  # noqa: F403
from .matcher_conformance import MatcherFactory


@pytest.fixture
def matcher_factory() -> MatcherFactory:
    return CompiledMatcher
