"""A server process settles its heap once started (``hookline.runtime``); tests' apps do not."""

from __future__ import annotations

import gc
import weakref
from typing import Any, Iterator

import pytest

from conftest import sync_workflow
from hookline.host import Host
from hookline.runtime import YOUNG_GENERATION_THRESHOLD
from hookline.settings import Settings
from hookline.testing import serve_in_process
from hookline.web.app import create_app


@pytest.fixture
def gc_state() -> Iterator[None]:
    """This test process's collector as it was, whatever the test did to it."""
    threshold = gc.get_threshold()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.parametrize("tune_gc", [True, False])
async def test_the_server_freezes_its_startup_heap_once_started(
    hookline_settings: Settings, gc_state: None, tune_gc: bool
) -> None:
    host = Host(hookline_settings)
    await host.migrate()
    app = create_app(host=host, tune_gc=tune_gc)
    app.config.TOUCHUP = False
    assert gc.get_freeze_count() == 0
    async with serve_in_process(app) as client:
        assert (await client.get("/api/health")).status_code == 200
        # The host, its plugins and the ORM are out of the collector's way; new objects are not.
        frozen = gc.get_freeze_count()
        assert (frozen > 10_000) is tune_gc
        assert (gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD) is tune_gc
        fresh = type("Fresh", (), {})()
        assert gc.is_tracked(fresh) and gc.get_freeze_count() == frozen


async def test_a_compiled_version_evicted_from_the_cache_is_freed_without_the_collector(hookline: Any) -> None:
    """With the collector's thresholds raised, garbage in reference cycles lingers and makes
    each collection longer: a compiled version leaves none when the cache drops it (its
    definition and nodes are freed at once, by reference counting)."""
    workflows = hookline.host.workflows
    await workflows.save(sync_workflow("dropped"))
    workflows._compiled.clear()
    gc.collect()
    gc.disable()  # from before it is compiled: no collection frees what it leaves meanwhile
    try:
        found = await workflows.find("dropped")
        assert found is not None
        definition = weakref.ref(found.compiled.definition)
        node = weakref.ref(found.compiled.nodes[0].branches["true"][0].definition)
        del found
        workflows._compiled.clear()
        assert definition() is None and node() is None
    finally:
        gc.enable()
