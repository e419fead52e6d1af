"""One namespace rule for the API and the CLI's text form."""

from __future__ import annotations

import pytest

from ltm_agent.embeddings import HashingEmbedder
from ltm_agent.errors import InvalidNamespaceError
from ltm_agent.memory_stores.memory import InMemoryStore
from ltm_agent.namespaces import format_namespace, parse_namespace, validate_namespace
from ltm_agent.records import StoredItem


@pytest.mark.parametrize("text", ["..", ".", "../x", "x/..", "./x", "a//b", "/a", "a/", "", "a b", '["a", ".."]'])
def test_parse_refuses_paths_and_empty_labels(text: str) -> None:
    with pytest.raises(InvalidNamespaceError):
        parse_namespace(text)


@pytest.mark.parametrize("labels", [("..",), (".",), ("a", ".."), ("a/b",), ("",), ()])
def test_api_refuses_the_same_labels(labels: tuple[str, ...]) -> None:
    with pytest.raises(InvalidNamespaceError):
        validate_namespace(labels)


def test_slash_label_error_names_both_fixes() -> None:
    with pytest.raises(InvalidNamespaceError) as info:
        validate_namespace(("a/b",))
    assert "('a', 'b')" in str(info.value) and "parse_namespace('a/b')" in str(info.value)


@pytest.mark.parametrize("text", ["user-42", "user-42/agent-a", "a.b/c_d", "...x", '["u", "a"]'])
def test_parse_and_format_round_trip(text: str) -> None:
    ns = parse_namespace(text)
    assert parse_namespace(format_namespace(ns)) == ns


def test_store_refuses_dot_labels_before_writing() -> None:
    store = InMemoryStore(embedder=HashingEmbedder())
    with pytest.raises(InvalidNamespaceError):
        store.put([StoredItem(("..",), "k", "x")])
    assert store.list_namespaces() == []
