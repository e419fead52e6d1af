"""``ltm-agent reliability`` in parts: each part keeps its figures, the page sums them."""

from __future__ import annotations

from pathlib import Path

from ltm_agent.app.bench.reliability import run_reliability

_SUITE = '''
import json, os
from pathlib import Path

def _record(suite, trials, ops):
    with (Path(os.environ["LTM_RELIABILITY_OUT"]) / "figures.jsonl").open("a") as handle:
        handle.write(json.dumps({"suite": suite, "trials": trials, "ops": ops, "failures": 0}) + "\\n")

def test_crash_part():
    _record("crash: put", 50 if os.environ.get("LTM_HEAVY") == "1" else 2, 7)

def test_other_part():
    _record("property: put", 1, 40)
'''


def test_parts_are_summed_into_one_page(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    (root / "tests" / "reliability").mkdir(parents=True)
    (root / "tests" / "reliability" / "test_fake.py").write_text(_SUITE)
    parts, page = tmp_path / "parts", tmp_path / "reliability.md"
    run_reliability(page, heavy=True, root=root, select="crash", parts=parts)
    first = page.read_text()
    assert "| crash: put | 50 | 7 | 0 |" in first and "property: put" not in first
    run_reliability(page, heavy=True, root=root, select="not crash", parts=parts)
    text = page.read_text()
    assert sorted(p.name for p in parts.iterdir()) == ["heavy-crash.json", "heavy-not_crash.json"]
    assert "| crash: put | 50 | 7 | 0 |" in text and "| property: put | 1 | 40 | 0 |" in text
    assert "--select 'crash'" in text and "--select 'not crash'" in text and "Generated in parts" in text
    assert "`test_crash_part` | passed" in text and "`test_other_part` | passed" in text
    assert "Failures in all: 0." in text


def test_each_part_names_the_commit_it_ran(tmp_path: Path) -> None:
    import subprocess

    from ltm_agent.app.bench.reliability import _commit

    root = tmp_path / "checkout"
    (root / "tests" / "reliability").mkdir(parents=True)
    (root / "tests" / "reliability" / "test_fake.py").write_text(_SUITE)
    assert _commit(root) is None  # not a git checkout: the page says "commit not recorded"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "suites"], cwd=root, check=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    assert _commit(root) == head
    page = tmp_path / "reliability.md"
    run_reliability(page, root=root, select="crash")
    assert f"at commit {head} " in page.read_text()
    (root / "docs").mkdir()
    (root / "docs" / "reliability.md").write_text("old page\n")
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "page"], cwd=root, check=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    (root / "docs" / "reliability.md").write_text("the page a part wrote\n")
    assert _commit(root, root / "docs" / "reliability.md") == head  # the page being written is not a change
    (root / "tests" / "reliability" / "test_fake.py").write_text(_SUITE + "\n# changed\n")
    assert _commit(root, root / "docs" / "reliability.md") == f"{head}+changes"


def test_a_failed_test_shows_its_message(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    (root / "tests" / "reliability").mkdir(parents=True)
    (root / "tests" / "reliability" / "test_fake.py").write_text("def test_breaks():\n    assert 1 == 2, 'the reason it broke'\n")
    page = tmp_path / "reliability.md"
    run_reliability(page, root=root)
    text = page.read_text()
    assert "| `test_breaks` | FAILED: AssertionError: the reason it broke" in text and "Failures in all: 1." in text
