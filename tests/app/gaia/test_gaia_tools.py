"""Offline tools: attachment readers, the calculator, the python sandbox, document search."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ltm_agent.app.gaia import readers
from ltm_agent.app.gaia.compute import calculate, convert_units, date_diff, format_number, to_number
from ltm_agent.app.gaia.sandbox import PythonSandbox
from ltm_agent.app.gaia.tools import DocumentSearch, Toolbox
from ltm_agent.app.gaia.writers import write_attachment
from ltm_agent.errors import InvalidInputError, MissingExtraError, UnsupportedOperationError

ROWS = [["item", "price"], ["apple", "3.5"], ["pear", "12"]]
LINES = ["Invoice 17", "Total due: $1,250.00", "Signed by: Ana Reis"]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".json"])
def test_tables_round_trip(tmp_path: Path, suffix: str) -> None:
    path = write_attachment(tmp_path / f"t{suffix}", rows=ROWS)
    assert readers.read_table(path) == [{"item": "apple", "price": "3.5"}, {"item": "pear", "price": "12"}]
    assert "pear" in readers.read_text(path)


@pytest.mark.parametrize("suffix", [".txt", ".docx", ".pdf"])
def test_documents_round_trip(tmp_path: Path, suffix: str) -> None:
    text = readers.read_text(write_attachment(tmp_path / f"d{suffix}", lines=LINES))
    assert "Total due: $1,250.00" in text and "Signed by: Ana Reis" in text


@pytest.mark.parametrize(("suffix", "module", "package"), [(".xlsx", "openpyxl", "openpyxl"),
                                                            (".docx", "docx", "python-docx"),
                                                            (".pdf", "pypdf", "pypdf")])
def test_missing_extra_names_the_pip_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          suffix: str, module: str, package: str) -> None:
    path = tmp_path / f"x{suffix}"
    path.write_bytes(b"not really")
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'ltm-agent\[gaia\]'") as info:
        readers.read_text(path)
    assert package in str(info.value)


def test_unknown_attachment_type(tmp_path: Path) -> None:
    (tmp_path / "a.mp3").write_bytes(b"\x00")
    with pytest.raises(UnsupportedOperationError, match="supported attachment types"):
        readers.read_text(tmp_path / "a.mp3")


def test_calculator_is_arithmetic_only() -> None:
    assert calculate("2 ** 10 - 24 / 4") == 1018
    for bad in ("__import__('os').system('id')", "open('x')", "(1).__class__", "9 ** 99999", "1/0"):
        with pytest.raises(InvalidInputError):
            calculate(bad)


def test_units_dates_numbers() -> None:
    assert format_number(convert_units(5, "km", "miles"), 4) == "3.1069"
    assert format_number(convert_units(32, "F", "C")) == "0"
    with pytest.raises(InvalidInputError, match="cannot convert"):
        convert_units(1, "kg", "km")
    assert date_diff("2023-12-25", "2024-01-01") == 7
    assert to_number("1,234.5 km") == "1234.5"


def test_python_tool_needs_opt_in() -> None:
    with pytest.raises(UnsupportedOperationError, match="--allow-python"):
        PythonSandbox().run("print(1)")
    assert "python" not in Toolbox().all_tools()
    assert "python" in Toolbox(python=PythonSandbox(enabled=True)).all_tools()


def test_python_tool_limits() -> None:
    box = PythonSandbox(enabled=True, time_limit_s=2, memory_mb=256)
    assert box.run("print(6 * 7)").stdout.strip() == "42"
    assert box.run("while True: pass").timed_out
    assert "MemoryError" in box.run("x = bytearray(600 * 2**20)").stderr
    net = box.run("import socket; socket.create_connection(('127.0.0.1', 9))")
    assert net.returncode != 0 and "blocks socket" in net.stderr
    spawn = box.run("import subprocess; subprocess.run(['true'])")
    assert spawn.returncode != 0 and "blocks" in spawn.stderr


def test_document_search_and_find_fact(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("The director of Marlow Museum is Ana Reis.\n\nThe harbour is old.\n")
    (tmp_path / "b.md").write_text("The birthplace of Ana Reis is Tavira.\n")
    docs = DocumentSearch(tmp_path)
    assert docs.find_fact(docs.find_fact("Marlow Museum", "director"), "birthplace") == "Tavira"
    tools = Toolbox(documents=docs).for_role("researcher")
    assert [t.name for t in tools] == ["search_documents", "find_fact"]  # no web_search offline
    assert tools[1].invoke({"subject": "Nobody", "relation": "director"}).startswith("Error:")
    assert any("web_search: absent" in n for n in Toolbox(documents=docs).notes())


def test_file_tools_stay_in_the_attachment_folder(tmp_path: Path) -> None:
    write_attachment(tmp_path / "t.xlsx", rows=ROWS)
    tools = Toolbox(attachments=tmp_path).all_tools()
    assert tools["table_lookup"].invoke(
        {"path": "t.xlsx", "match_column": "item", "match_value": "Pear", "return_column": "price"}) == "12"
    assert "outside" in tools["read_file"].invoke({"path": "../../etc/passwd"})
