"""Root conftest: registers the smtx-voyager pytest plugin and the fixture
modules of ``fixtures/``. The plugin is inert unless tests under ``suites/``
are collected (``pytest tests_unit`` only sees its options)."""

pytest_plugins = [
    "voyager.pytest_plugin",
    "fixtures.plan",
    "fixtures.state",
    "fixtures.clients",
    "fixtures.hosts",
    "fixtures.ids",
    "fixtures.tower",
    "fixtures.workload",
    "fixtures.perf",
]
