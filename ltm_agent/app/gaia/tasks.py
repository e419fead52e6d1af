"""GAIA tasks: the ``metadata.jsonl`` format and its attachment folder.

GAIA's validation split is gated on the Hugging Face hub (``gaia-benchmark/GAIA``): accept its
terms there and download it yourself; this project never ships or downloads it. The folder
holds ``metadata.jsonl`` (one task per line: ``task_id``, ``Question``, ``Level``,
``Final answer``, ``file_name``, ``Annotator Metadata``) and the attachments it names.
Our offline streams (:mod:`ltm_agent.app.gaia.stream`) write the same format, with extra keys
GAIA does not have (``family``, ``block``, ``held_out``, ``demonstration``).

Core types: :class:`GaiaTask`; functions :func:`load_tasks`, :func:`write_tasks`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ltm_agent.errors import DataFormatError, NotFoundError, describe

__all__ = ["GAIA_HOWTO", "GaiaTask", "load_tasks", "write_tasks"]

GAIA_HOWTO = (
    "GAIA is gated: accept its terms at https://huggingface.co/datasets/gaia-benchmark/GAIA, download the "
    "2023/validation folder yourself (e.g. `huggingface-cli download gaia-benchmark/GAIA --repo-type dataset "
    "--local-dir gaia`), and pass the folder holding metadata.jsonl (or set LTM_GAIA_DIR for the tests)"
)


@dataclass(frozen=True, slots=True)
class GaiaTask:
    """One GAIA task.

    Attributes:
        task_id: GAIA's id.
        question: The question text.
        level: 1, 2 or 3 (our streams use 1).
        final_answer: The gold answer (``"?"`` on GAIA's test split, where gold is hidden).
        file_name: The attachment's name in the task folder (``""`` when none).
        file_path: The attachment's absolute path (``None`` when none).
        annotator: GAIA's ``Annotator Metadata`` (steps, tools), never shown to the team.
        family: Our streams only: the task family (``""`` for GAIA).
        demonstration: Our streams only: a scripted demonstrator's plan for this task (the
            stand-in for a strong model's first solve), or ``None``.
        block: Our streams only: the block of the stream the task belongs to (0 for GAIA).
        held_out: Our streams only: the task's family has no demonstration.
    """

    task_id: str
    question: str
    level: int
    final_answer: str
    file_name: str = ""
    file_path: Path | None = None
    annotator: Mapping[str, Any] = field(default_factory=dict)
    family: str = ""
    demonstration: tuple[Mapping[str, Any], ...] | None = None
    block: int = 0
    held_out: bool = False

    @property
    def has_gold(self) -> bool:
        """False on GAIA's test split, whose answers are ``"?"``."""
        return self.final_answer.strip() not in ("", "?")


def _task(row: Mapping[str, Any], folder: Path, where: str) -> GaiaTask:
    missing = [key for key in ("task_id", "Question", "Level", "Final answer") if key not in row]
    if missing:
        raise DataFormatError(
            f"{where}: a GAIA task needs task_id, Question, Level and Final answer; {missing} missing "
            f"(keys: {sorted(row)}); is this GAIA's metadata.jsonl?"
        )
    try:
        level = int(row["Level"])
    except (TypeError, ValueError):
        raise DataFormatError(f"{where}: Level must be 1, 2 or 3, got {describe(row['Level'])}") from None
    file_name = str(row.get("file_name") or "")
    file_path = (folder / file_name).resolve() if file_name else None
    demo = row.get("demonstration")
    return GaiaTask(
        task_id=str(row["task_id"]),
        question=str(row["Question"]),
        level=level,
        final_answer=str(row["Final answer"]),
        file_name=file_name,
        file_path=file_path,
        annotator=dict(row.get("Annotator Metadata") or {}),
        family=str(row.get("family") or ""),
        demonstration=tuple(demo) if demo else None,
        block=int(row.get("block") or 0),
        held_out=bool(row.get("held_out", False)),
    )


def load_tasks(path: str | Path) -> list[GaiaTask]:
    """Read GAIA tasks from ``metadata.jsonl`` or the folder holding it.

    Attachments are looked up next to the metadata file; a named attachment that is missing is
    an error (a run would silently score 0 on it otherwise).

    Raises:
        NotFoundError: No metadata file, or a named attachment is absent.
        DataFormatError: A line is not JSON or lacks GAIA's keys.

    Example:
        >>> import json, tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> row = {"task_id": "t1", "Question": "2+2?", "Level": 1, "Final answer": "4", "file_name": ""}
        >>> _ = (folder / "metadata.jsonl").write_text(json.dumps(row) + "\\n")
        >>> [t.final_answer for t in load_tasks(folder)]
        ['4']
    """
    path = Path(path)
    metadata = path / "metadata.jsonl" if path.is_dir() else path
    if not metadata.is_file():
        raise NotFoundError(f"no GAIA metadata at {str(metadata)!r}. {GAIA_HOWTO}")
    folder = metadata.parent
    tasks: list[GaiaTask] = []
    with metadata.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{metadata}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(f"{where} is not JSON ({exc.msg}); metadata.jsonl holds one object per line")
            if not isinstance(row, dict):
                raise DataFormatError(f"{where}: expected a JSON object, got {describe(row)}")
            task = _task(row, folder, where)
            if task.file_path is not None and not task.file_path.is_file():
                raise NotFoundError(
                    f"{where}: task {task.task_id} names attachment {task.file_name!r}, which is not in {str(folder)!r}; "
                    f"download the attachments with metadata.jsonl"
                )
            tasks.append(task)
    ids = [t.task_id for t in tasks]
    if len(set(ids)) != len(ids):
        raise DataFormatError(f"{metadata}: task ids repeat; each task_id must be unique")
    return tasks


def write_tasks(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write task rows (GAIA's keys) as ``metadata.jsonl``; return its path."""
    path = Path(path)
    target = path / "metadata.jsonl" if path.suffix != ".jsonl" else path
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(dict(row), ensure_ascii=False) + "\n")
    return target
