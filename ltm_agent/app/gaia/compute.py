"""Deterministic computing tools: a safe calculator, unit conversion, date arithmetic, number clean-up.

The calculator walks Python's AST and allows only numbers, arithmetic operators and a short list
of math functions: no names, attributes, calls of anything else, or ``eval``. Exponents and
factorials are bounded so an expression cannot stall the run.

Core functions: :func:`calculate`, :func:`convert_units`, :func:`date_diff`, :func:`date_add`,
:func:`to_number`, :func:`format_number`.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from datetime import date, timedelta
from typing import Any, Callable

from dateutil import parser as date_parser

from ltm_agent.errors import InvalidInputError, describe

__all__ = ["UNITS", "calculate", "convert_units", "date_add", "date_diff", "format_number", "to_number"]

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs, "round": round, "min": min, "max": max, "sqrt": math.sqrt, "log": math.log,
    "log10": math.log10, "exp": math.exp, "floor": math.floor, "ceil": math.ceil, "sin": math.sin,
    "cos": math.cos, "tan": math.tan, "factorial": math.factorial,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_MAX_EXPONENT = 10_000


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise InvalidInputError(f"exponent {right} is over the calculator's limit of {_MAX_EXPONENT}")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS and not node.keywords:
        args = [_evaluate(a) for a in node.args]
        if node.func.id == "factorial" and args and args[0] > 1000:
            raise InvalidInputError("factorial argument over 1000; the calculator refuses it")
        return _FUNCTIONS[node.func.id](*args)
    raise InvalidInputError(
        f"the calculator accepts numbers, + - * / // % **, parentheses and {sorted(_FUNCTIONS)}; "
        f"{ast.dump(node)[:60]} is not allowed (use the python tool for programs)"
    )


def calculate(expression: str) -> float | int:
    """Evaluate an arithmetic expression safely (no ``eval``).

    Raises:
        InvalidInputError: Syntax outside arithmetic, a division by zero, or a bound exceeded.

    Example:
        >>> calculate("(3 + 4) * 2 ** 3"), calculate("sqrt(16) / 8")
        (56, 0.5)
    """
    if not isinstance(expression, str) or len(expression) > 500:
        raise InvalidInputError(f"an expression is a str of at most 500 characters, got {describe(expression)}")
    try:
        tree = ast.parse(expression.replace("^", "**").replace("×", "*").strip(), mode="eval")
        return _evaluate(tree)
    except InvalidInputError:
        raise
    except SyntaxError as exc:
        raise InvalidInputError(f"cannot parse {expression!r} as arithmetic: {exc.msg}") from None
    except (ZeroDivisionError, OverflowError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"cannot evaluate {expression!r}: {exc}") from None


# Factors to one base unit per dimension; temperature is handled apart (offsets).
UNITS: dict[str, tuple[str, float]] = {}
for _dimension, _table in {
    "length": {"m": 1.0, "km": 1000.0, "cm": 0.01, "mm": 0.001, "mi": 1609.344, "ft": 0.3048, "in": 0.0254,
               "yd": 0.9144, "nmi": 1852.0},
    "mass": {"kg": 1.0, "g": 0.001, "mg": 1e-6, "t": 1000.0, "lb": 0.45359237, "oz": 0.028349523125},
    "volume": {"l": 1.0, "ml": 0.001, "gal": 3.785411784, "qt": 0.946352946, "cup": 0.2365882365, "m3": 1000.0},
    "time": {"s": 1.0, "min": 60.0, "h": 3600.0, "day": 86400.0, "week": 604800.0},
    "speed": {"m/s": 1.0, "km/h": 1 / 3.6, "mph": 0.44704, "kn": 1852 / 3600},
}.items():
    for _unit, _factor in _table.items():
        UNITS[_unit] = (_dimension, _factor)
_ALIASES = {
    "meter": "m", "meters": "m", "metre": "m", "metres": "m", "kilometer": "km", "kilometers": "km",
    "kilometre": "km", "kilometres": "km", "centimetres": "cm", "centimeters": "cm", "millimetres": "mm",
    "millimeters": "mm", "mile": "mi", "miles": "mi", "foot": "ft", "feet": "ft", "inch": "in", "inches": "in",
    "yard": "yd", "yards": "yd", "nautical miles": "nmi", "kilogram": "kg", "kilograms": "kg", "gram": "g",
    "grams": "g", "milligrams": "mg", "tonne": "t", "tonnes": "t", "pound": "lb", "pounds": "lb", "lbs": "lb",
    "ounce": "oz", "ounces": "oz", "litre": "l", "litres": "l", "liter": "l", "liters": "l", "millilitres": "ml",
    "milliliters": "ml", "gallon": "gal", "gallons": "gal", "us gallons": "gal", "quarts": "qt", "cups": "cup",
    "seconds": "s", "minutes": "min", "hours": "h", "hour": "h", "days": "day", "weeks": "week",
    "kph": "km/h", "miles per hour": "mph", "knots": "kn",
}
_TEMPERATURE = {"c": "c", "celsius": "c", "degrees celsius": "c", "f": "f", "fahrenheit": "f",
                "degrees fahrenheit": "f", "k": "k", "kelvin": "k"}


def _unit(name: str) -> str:
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """Convert ``value`` between units of one dimension (length, mass, volume, time, speed, temperature).

    Example:
        >>> round(convert_units(10, "miles", "km"), 3), convert_units(100, "celsius", "fahrenheit")
        (16.093, 212.0)
    """
    source, target = _unit(from_unit), _unit(to_unit)
    if source in _TEMPERATURE and target in _TEMPERATURE:
        kelvin = {"c": lambda v: v + 273.15, "f": lambda v: (v - 32) * 5 / 9 + 273.15, "k": lambda v: v}
        back = {"c": lambda k: k - 273.15, "f": lambda k: (k - 273.15) * 9 / 5 + 32, "k": lambda k: k}
        return back[_TEMPERATURE[target]](kelvin[_TEMPERATURE[source]](float(value)))
    if source not in UNITS or target not in UNITS:
        unknown = from_unit if source not in UNITS else to_unit
        raise InvalidInputError(f"unknown unit {unknown!r}; known units: {sorted(UNITS)} and C/F/K")
    (dim_a, factor_a), (dim_b, factor_b) = UNITS[source], UNITS[target]
    if dim_a != dim_b:
        raise InvalidInputError(f"cannot convert {dim_a} ({from_unit!r}) to {dim_b} ({to_unit!r})")
    return float(value) * factor_a / factor_b


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        pass
    try:
        return date_parser.parse(text, dayfirst=False).date()
    except (ValueError, OverflowError):
        raise InvalidInputError(f"cannot read {text!r} as a date; write it as YYYY-MM-DD") from None


def date_diff(start: str, end: str, unit: str = "days") -> int:
    """Whole days (or weeks) from ``start`` to ``end`` (negative when ``end`` is earlier).

    Example:
        >>> date_diff("2024-02-01", "2024-03-01")
        29
    """
    days = (_date(end) - _date(start)).days
    if unit in ("days", "day"):
        return days
    if unit in ("weeks", "week"):
        return days // 7
    raise InvalidInputError(f"unit must be 'days' or 'weeks', got {unit!r}")


def date_add(start: str, days: int) -> str:
    """The ISO date ``days`` after ``start``.

    Example:
        >>> date_add("2024-02-27", 3)
        '2024-03-01'
    """
    return (_date(start) + timedelta(days=int(days))).isoformat()


_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")


def to_number(text: str) -> str:
    """The first number in ``text``, without units, currency or thousands separators.

    Example:
        >>> to_number("about $1,234.50 per km"), to_number("12 km")
        ('1234.5', '12')
    """
    match = _NUMBER.search(str(text))
    if match is None:
        raise InvalidInputError(f"no number in {text!r}")
    return format_number(float(match.group().replace(",", "")))


def format_number(value: float | int | str, decimals: int | None = None) -> str:
    """A number as GAIA wants it: no thousands separators, no trailing zeros, optional rounding.

    Example:
        >>> format_number(16.0934, 2), format_number(29.0), format_number("3.50")
        ('16.09', '29', '3.5')
    """
    number = float(value)
    if decimals is not None:
        number = round(number, int(decimals))
    if number.is_integer():
        return str(int(number))
    return f"{number:.10f}".rstrip("0").rstrip(".")
