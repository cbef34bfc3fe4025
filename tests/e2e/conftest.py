"""Fixtures of the end-to-end tests: the AppTest page renderer of the dashboard tests."""

from tests.dashboard.conftest import render  # noqa: F401  (re-exported fixture)
