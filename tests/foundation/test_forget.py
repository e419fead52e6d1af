"""Forgetting a tenant removes everything under its prefix, on every backend, sync and async."""

from __future__ import annotations

import asyncio

import pytest

from ltm_agent.errors import InvalidNamespaceError
from ltm_agent.records import StoredItem


def fill(store) -> None:
    store.put([StoredItem(("user-42", "c1"), f"a{i}", f"chat one {i}") for i in range(3)])
    store.put([StoredItem(("user-42", "c2"), "b", "chat two"), StoredItem(("user-42",), "top", "profile")])
    store.put([StoredItem(("user-420",), "x", "another user"), StoredItem(("user-7", "c1"), "y", "another user")])


def test_forget_removes_every_namespace_under_the_prefix(store) -> None:
    fill(store)
    assert store.delete(("user-42",)) == 1  # delete is one namespace, exactly as named
    fill(store)
    removed = store.forget(("user-42",))
    assert removed == {("user-42",): 1, ("user-42", "c1"): 3, ("user-42", "c2"): 1}
    assert store.list_namespaces(("user-42",)) == []
    # A label that merely starts the same way is another tenant.
    assert store.list_namespaces() == [("user-420",), ("user-7", "c1")]
    assert store.forget(("user-42",)) == {}


def test_aforget_matches_forget(store) -> None:
    fill(store)
    assert asyncio.run(store.aforget(("user-42", "c1"))) == {("user-42", "c1"): 3}
    assert store.count(("user-42", "c2")) == 1


def test_forgetting_everything_is_refused(store) -> None:
    fill(store)
    with pytest.raises(InvalidNamespaceError):
        store.forget(())
    assert len(store.list_namespaces()) == 5
