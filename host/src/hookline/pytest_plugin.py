"""The pytest plugin that installing Hookline registers (entry point ``pytest11``).

pytest loads this module in every run of an environment where ``hookline`` is installed, and an
entry point cannot depend on an extra: it must import with Hookline's base dependencies alone,
or a stranger's unrelated test run stops before collecting anything. So it only looks for the
``test`` extra's modules here. When they are installed it brings in the fixtures of
:mod:`hookline.testing`; when they are not, the ``hookline`` and ``hookline_server`` fixtures
say what to install, and a project that uses neither is not affected.
"""

from __future__ import annotations

import importlib.util

import pytest

#: The modules hookline.testing imports beyond the base dependencies, and the package of each.
_TEST_EXTRA_MODULES = {"httpx": "httpx", "pytest_asyncio": "pytest-asyncio"}


def _missing_test_package() -> str | None:
    """The first package of the ``test`` extra that is not installed, or None."""
    for module, package in _TEST_EXTRA_MODULES.items():
        # find_spec looks without importing: the check costs nothing when all is there.
        if importlib.util.find_spec(module) is None:
            return package
    return None


_missing = _missing_test_package()

if _missing is None:
    # Fixture functions are found by name on the plugin module; importing them is registering them.
    from hookline.testing import (  # noqa: F401
        hookline,
        hookline_db_url,
        hookline_entry_points,
        hookline_plugins,
        hookline_server,
        hookline_settings,
    )
else:

    def _fail_without_test_extra(fixture: str) -> None:
        pytest.fail(
            f"the '{fixture}' fixture needs {_missing}, which is not installed in this environment: "
            "Hookline's test fixtures come with its test extra, pip install 'hookline[test]'",
            pytrace=False,
        )

    @pytest.fixture
    def hookline() -> None:
        """Stands in for hookline.testing's fixture while the ``test`` extra is missing."""
        _fail_without_test_extra("hookline")

    @pytest.fixture
    def hookline_server() -> None:
        """Stands in for hookline.testing's fixture while the ``test`` extra is missing."""
        _fail_without_test_extra("hookline_server")
