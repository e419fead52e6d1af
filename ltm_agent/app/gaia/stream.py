"""Offline GAIA-format task streams of our own, with attachments generated from a seed.

:func:`write_stream` writes ``metadata.jsonl`` (GAIA's keys plus ``family`` and
``demonstration``), every attachment (csv, xlsx, json, txt, docx, pdf) and a local document
folder (``docs/``) for the multi-hop family. Ten families, ``per_family`` tasks each (7 by
default: 70 tasks), each task with its own file and numbers:

========================  =========================================================  ==========
family                    what it asks                                               attachment
========================  =========================================================  ==========
``csv_lookup``            a cell of a price list, by item and column                 csv
``xlsx_sum``              a column's total over one region                           xlsx
``date_diff``             days between two dates                                     -
``unit_conversion``       a value converted between units, rounded                   -
``multi_hop``             where the director of an institution was born (2 hops)     docs/
``ordered_list``          the top-k cities by a metric, largest first                csv
``pdf_invoice``           the total due on an invoice                                pdf
``docx_memo``             who signed a memo                                          docx
``count_word``            how often a word occurs in a text                          txt
``number_traps``          a distance written with its unit; the answer is the number txt
========================  =========================================================  ==========

The stream is ordered in **blocks**: block ``b`` holds the ``b``-th task of every family, in a
seeded order. The first task of each family that is not held out carries a ``demonstration``:
the tool calls a scripted demonstrator makes (it stands in for a user's strong model - the
offline run has no model to solve a task the first time). Held-out families get none. The
demonstrator's calls run through the real tools; no answer is ever given to the team.

Core function: :func:`write_stream`; :data:`FAMILIES`, :data:`DEFAULT_HELD_OUT`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ltm_agent.app.gaia.compute import convert_units, format_number
from ltm_agent.app.gaia.tasks import write_tasks
from ltm_agent.app.gaia.writers import write_attachment
from ltm_agent.errors import InvalidInputError

__all__ = ["DEFAULT_HELD_OUT", "FAMILIES", "StreamTask", "write_stream"]

DEFAULT_HELD_OUT = ("count_word", "unit_conversion")
"""Families with no demonstration: no workflow can be learnt for them, so they must stay unsolved offline."""

_ITEMS = ["apple", "pear", "fig", "plum", "kiwi", "mango", "lime", "peach", "grape", "melon", "cherry", "papaya"]
_REGIONS = ["north", "south", "east", "west"]
_CITIES = ["Aveiro", "Braga", "Coimbra", "Evora", "Faro", "Guarda", "Leiria", "Lisbon", "Porto", "Tomar",
           "Viseu", "Sintra"]
_FIRST = ["Ana", "Rui", "Marta", "Joao", "Ines", "Pedro", "Sofia", "Tiago", "Clara", "Nuno", "Lara", "Hugo"]
_LAST = ["Reis", "Costa", "Pinto", "Lopes", "Matos", "Vieira", "Nunes", "Rocha", "Teixeira", "Moura"]
_TOWNS = ["Tavira", "Lagos", "Nazare", "Obidos", "Mertola", "Peniche", "Amarante", "Chaves", "Elvas", "Serpa"]
_INSTITUTIONS = ["Marlow Museum", "Harbour Gallery", "Granite Library", "Orchard Institute", "Beacon Theatre",
                 "Quarry Archive", "Salt Museum", "Tidewater Gallery", "Cedar Library", "Falcon Observatory"]
_PLACES = ["Pico Alto", "Lagoa Azul", "Serra Fria", "Vale Verde", "Ponta Sul", "Cabo Norte", "Monte Claro"]
_WORDS = ["river", "stone", "lantern", "harbour", "meadow"]
_FILLER = ["the", "old", "road", "went", "past", "a", "quiet", "field", "and", "over", "hill", "near", "town"]
_UNITS = [("miles", "km"), ("kg", "pounds"), ("litres", "gallons"), ("feet", "metres"), ("km", "miles")]


@dataclass(frozen=True, slots=True)
class StreamTask:
    """What a family generator returns for one task."""

    question: str
    answer: str
    file_name: str
    calls: list[dict[str, Any]]
    level: int = 1


def _call(role: str, tool: str, **args: Any) -> dict[str, Any]:
    return {"role": role, "tool": tool, "args": {k: str(v) for k, v in args.items()}}


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _csv_lookup(rng: random.Random, tid: str, folder: Path, docs: dict[str, Any]) -> StreamTask:
    items = rng.sample(_ITEMS, 6)
    rows = [["item", "price", "stock"]] + [[i, f"{rng.randint(100, 2000) / 100:.2f}", str(rng.randint(1, 300))]
                                           for i in items]
    write_attachment(folder / f"{tid}.csv", rows=rows)
    row = rng.choice(rows[1:])
    column = rng.choice(["price", "stock"])
    value = row[1] if column == "price" else row[2]
    question = f"In the attached inventory table, what is the {column} of {row[0]}? Answer with the number only."
    return StreamTask(question, format_number(value), f"{tid}.csv",
                      [_call("file_reader", "table_lookup", path=f"{tid}.csv", match_column="item",
                             match_value=row[0], return_column=column)])


def _xlsx_sum(rng: random.Random, tid: str, folder: Path, docs: dict[str, Any]) -> StreamTask:
    rows = [["region", "month", "sales", "units"]]
    for month in range(1, 7):
        for region in _REGIONS:
            rows.append([region, f"2024-{month:02d}", str(rng.randint(10, 500)), str(rng.randint(1, 40))])
    write_attachment(folder / f"{tid}.xlsx", rows=rows)
    region, column = rng.choice(_REGIONS), rng.choice(["sales", "units"])
    total = sum(int(r[2 if column == "sales" else 3]) for r in rows[1:] if r[0] == region)
    question = f"What is the total {column} for the {region} region in the attached spreadsheet?"
    return StreamTask(question, str(total), f"{tid}.xlsx",
                      [_call("file_reader", "table_aggregate", path=f"{tid}.xlsx", column=column, op="sum",
                             where_column="region", where_value=region)])


def _date_diff(rng: random.Random, tid: str, folder: Path, docs: dict[str, Any]) -> StreamTask:
    start = date(2020, 1, 1) + timedelta(days=rng.randint(0, 1500))
    end = start + timedelta(days=rng.randint(5, 900))
    question = f"How many days are there from {start.isoformat()} to {end.isoformat()}?"
    return StreamTask(question, str((end - start).days), "",
                      [_call("coder", "date_diff", start=start.isoformat(), end=end.isoformat(), unit="days")])


def _unit_conversion(rng: random.Random, tid: str, folder: Path, docs: dict[str, Any]) -> StreamTask:
    source, target = rng.choice(_UNITS)
    value = rng.randint(2, 400) / rng.choice([1, 10])
    value_text = format_number(value)
    question = f"Convert {value_text} {source} to {target}. Round to 2 decimal places."
    answer = format_number(convert_units(value, source, target), 2)
    return StreamTask(question, answer, "", [
        _call("coder", "convert_units", value=value_text, from_unit=source, to_unit=target),
        _call("coder", "round_number", value="<previous>", decimals="2"),
    ], level=2)


def _multi_hop(rng: random.Random, tid: str, folder: Path, docs: dict[str, Any]) -> StreamTask:
    institution = docs["institutions"][docs["used"] % len(docs["institutions"])]
    docs["used"] += 1
    director = docs["directors"][institution]
    town = docs["birthplaces"][director]
    question = f"In which town was the director of the {institution} born?"
    return StreamTask(question, town, "", [
        _call("researcher", "find_fact", subject=institution, relation="director"),
        _call("researcher", "find_fact", subject="<previous>", relation="birthplace"),
    ], level=2)


def _ordered_list(rng: random.Random, tid: str, folder: Path, docs: dict[str, Any]) -> StreamTask:
    cities = rng.sample(_CITIES, 8)
    values = rng.sample(range(1000, 90000), 8)
    metric = rng.choice(["population", "visitors"])
    rows = [["city", metric]] + [[c, str(v)] for c, v in zip(cities, values)]
    write_attachment(folder / f"{tid}.csv", rows=rows)
    k = rng.randint(2, 4)
    top = [c for c, _ in sorted(zip(cities, values), key=lambda cv: -cv[1])[:k]]
    question = (f"List the {k} cities with the largest {metric} in the attached table, largest first, "
                f"separated by commas.")
    return StreamTask(question, ", ".join(top), f"{tid}.csv",
                      [_call("file_reader", "table_top", path=f"{tid}.csv", sort_column=metric, k=k,
                             return_column="city", descending="true")])


def _pdf_invoice(rng: random.Random, tid: str, folder: Path, docs: dict[str, Any]) -> StreamTask:
    cents = rng.randint(10_000, 900_000)
    total = f"${cents // 100:,}.{cents % 100:02d}"
    lines = [f"Invoice {rng.randint(1000, 9999)}", f"Customer: {_name(rng)}",
             f"Subtotal: ${rng.randint(50, 9000)}.00", f"Total due: {total}", "Thank you for your business."]
    write_attachment(folder / f"{tid}.pdf", lines=lines)
    question = "What is the total due on the attached invoice, in US dollars?"
    return StreamTask(question, format_number(cents / 100), f"{tid}.pdf",
                      [_call("file_reader", "extract_field", path=f"{tid}.pdf", label="Total due")])


def _docx_memo(rng: random.Random, tid: str, folder: Path, docs: dict[str, Any]) -> StreamTask:
    signer = _name(rng)
    lines = ["MEMO", f"To: {_name(rng)}", f"Subject: {rng.choice(['budget', 'travel', 'hiring'])} review",
             "Please read the attached notes before Friday.", f"Signed by: {signer}"]
    write_attachment(folder / f"{tid}.docx", lines=lines)
    return StreamTask("Who signed the attached memo? Give the full name.", signer, f"{tid}.docx",
                      [_call("file_reader", "extract_field", path=f"{tid}.docx", label="Signed by")])


def _count_word(rng: random.Random, tid: str, folder: Path, docs: dict[str, Any]) -> StreamTask:
    word = rng.choice(_WORDS)
    tokens = [rng.choice(_FILLER + _WORDS) for _ in range(rng.randint(80, 160))]
    write_attachment(folder / f"{tid}.txt", lines=[" ".join(tokens[i:i + 12]) for i in range(0, len(tokens), 12)])
    question = f'How many times does the word "{word}" appear in the attached text?'
    return StreamTask(question, str(tokens.count(word)), f"{tid}.txt",
                      [_call("file_reader", "count_word", path=f"{tid}.txt", word=word)])


def _number_traps(rng: random.Random, tid: str, folder: Path, docs: dict[str, Any]) -> StreamTask:
    places = rng.sample(_PLACES, 4)
    distances = {p: f"{rng.randint(1000, 25000):,} m" if rng.random() < 0.5 else f"{rng.randint(5, 400) / 10} km"
                 for p in places}
    lines = ["Trip report", *(f"{p}: {d}" for p, d in distances.items())]
    write_attachment(folder / f"{tid}.txt", lines=lines)
    place = rng.choice(places)
    raw = distances[place]
    question = f"According to the attached trip report, what distance is listed for {place}? Give the number only."
    return StreamTask(question, format_number(float(raw.split()[0].replace(",", ""))), f"{tid}.txt", [
        _call("file_reader", "extract_field", path=f"{tid}.txt", label=place),
        _call("coder", "to_number", text="<previous>"),
    ], level=2)


FAMILIES: dict[str, Callable[[random.Random, str, Path, dict[str, Any]], StreamTask]] = {
    "csv_lookup": _csv_lookup, "xlsx_sum": _xlsx_sum, "date_diff": _date_diff, "unit_conversion": _unit_conversion,
    "multi_hop": _multi_hop, "ordered_list": _ordered_list, "pdf_invoice": _pdf_invoice, "docx_memo": _docx_memo,
    "count_word": _count_word, "number_traps": _number_traps,
}


def _write_documents(rng: random.Random, folder: Path) -> dict[str, Any]:
    """The local document folder: who directs each institution, where each person was born, and distractors."""
    people = rng.sample([f"{f} {s}" for f in _FIRST for s in _LAST], len(_INSTITUTIONS) * 2)
    directors = dict(zip(_INSTITUTIONS, people))
    births = {p: rng.choice(_TOWNS) for p in people}
    institutions = list(_INSTITUTIONS)
    rng.shuffle(institutions)
    folder.mkdir(parents=True, exist_ok=True)
    for n, chunk in enumerate(range(0, len(institutions), 3)):
        paragraphs = []
        for inst in institutions[chunk:chunk + 3]:
            paragraphs.append(f"The {inst} opened in {rng.randint(1890, 2010)}. The director of {inst} is "
                              f"{directors[inst]}. Its curator is {people[-1 - n]}.")
        (folder / f"institutions-{n + 1}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    bios = [f"The birthplace of {p} is {births[p]}. {p.split()[0]} studied in {rng.choice(_CITIES)}." for p in people]
    (folder / "people.md").write_text("\n\n".join(bios) + "\n", encoding="utf-8")
    return {"institutions": institutions, "directors": directors, "birthplaces": births, "used": 0}


def write_stream(
    folder: str | Path,
    *,
    seed: int = 0,
    per_family: int = 7,
    held_out: tuple[str, ...] = DEFAULT_HELD_OUT,
    families: tuple[str, ...] | None = None,
) -> Path:
    """Write a seeded offline stream (metadata.jsonl, attachments, docs/) into ``folder``.

    ``families`` keeps only those families (default all ten). Returns the metadata path. ``<previous>`` in a demonstration's arguments means "the output
    of the previous call", filled in when the demonstrator runs.

    Example:
        >>> import tempfile
        >>> from ltm_agent.app.gaia.tasks import load_tasks
        >>> tasks = load_tasks(write_stream(tempfile.mkdtemp(), per_family=2))
        >>> len(tasks), len({t.family for t in tasks}), sum(t.demonstration is not None for t in tasks)
        (20, 10, 8)
    """
    chosen = tuple(FAMILIES) if families is None else tuple(families)
    unknown = (set(held_out) | set(chosen)) - set(FAMILIES)
    if unknown:
        raise InvalidInputError(f"unknown families {sorted(unknown)}; families are {sorted(FAMILIES)}")
    if per_family < 1:
        raise InvalidInputError(f"per_family must be >= 1, got {per_family!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    docs = _write_documents(rng, folder / "docs")
    rows = []
    for block in range(1, per_family + 1):
        order = list(chosen)
        rng.shuffle(order)
        for family in order:
            tid = f"{family}-s{seed}-{block:02d}"
            task = FAMILIES[family](rng, tid, folder, docs)
            demo = block == 1 and family not in held_out
            rows.append({
                "task_id": tid, "Question": task.question, "Level": task.level, "Final answer": task.answer,
                "file_name": task.file_name, "Annotator Metadata": {"Number of steps": str(len(task.calls))},
                "family": family, "block": block, "held_out": family in held_out,
                "demonstration": task.calls if demo else None,
            })
    return write_tasks(folder, rows)
