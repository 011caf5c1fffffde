"""SnapStart restore hooks (aios.snapstart): what one snapshot must not share.

https://docs.aws.amazon.com/lambda/latest/dg/snapstart-uniqueness.html: state created during
init (random seeds, credentials, connections) is shared by every environment restored from
the snapshot; https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html:
hooks registered with ``snapshot_restore_py`` run after each restore.
"""

from __future__ import annotations

import random
import sys
import types
from functools import cache

import pytest

from aios import snapstart


def test_restore_reseeds_random() -> None:
    random.seed(7)
    snapshotted = random.random()
    random.seed(7)  # the state every restored environment would share
    snapstart.restore()
    assert random.random() != snapshotted


def test_restore_rebuilds_cached_clients_of_the_aios_package(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []

    # A factory as the package writes them (``@cache def default_writer(): ...``), in an aios module
    module = types.ModuleType("aios._snapstart_probe")

    @cache
    def default_client() -> object:
        client = object()
        built.append(client)
        return client

    default_client.__module__ = module.__name__
    module.default_client = default_client  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    first = default_client()
    assert default_client() is first
    snapstart.restore()
    assert default_client() is not first
    assert len(built) == 2


def test_restore_leaves_caches_outside_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("elsewhere_probe")

    @cache
    def value() -> object:
        return object()

    value.__module__ = module.__name__
    module.value = value  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    first = value()
    snapstart.restore()
    assert value() is first


def test_restore_drops_boto3_default_session(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("boto3")
    fake.DEFAULT_SESSION = object()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "boto3", fake)
    snapstart.restore()
    assert fake.DEFAULT_SESSION is None


def test_hooks_register_with_the_runtime_library_when_lambda_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[object] = []
    library = types.ModuleType("snapshot_restore_py")
    library.register_after_restore = registered.append  # type: ignore[attr-defined]
    monkeypatch.setattr(snapstart, "_registered", False)
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", library)
    assert snapstart.register_runtime_hooks()
    assert registered == [snapstart.restore]


def test_without_the_runtime_library_nothing_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapstart, "_registered", False)
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails, as off Lambda
    assert not snapstart.register_runtime_hooks()
