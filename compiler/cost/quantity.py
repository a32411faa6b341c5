"""Kubernetes quantities (k8s.io/apimachinery ``resource.Quantity``), parsed exactly.

``100m`` is 0.1, ``1Gi`` is 1073741824, ``500M`` is 500000000, ``1e3`` is 1000. Numbers are
:class:`~decimal.Decimal`, never floats: a sum of quantities is exact, as Kubernetes' is.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

_PATTERN = re.compile(r"(?P<number>[+-]?(\d+(\.\d*)?|\.\d+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|"
                      r"M|G|T|P|E|[eE][+-]?\d+)?")
# the loader validates with model.fields.QUANTITY; tests/test_cost.py checks both agree
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
GIB = Decimal(1024) ** 3
# Kubernetes stores a quantity in an int64 of its smallest unit: larger is no quantity it takes
LIMIT = Decimal(2) ** 63
PRECISION = 60  # significant digits: quantities, GiB and prices multiply exactly at this size


class QuantityError(ValueError):
    """Not a Kubernetes quantity."""


def parse_quantity(value: Any) -> Decimal:
    """The exact value of a quantity written as text (``"250m"``, ``"4Gi"``) or as a YAML
    number (``2``, ``0.5``). Raises :class:`QuantityError` for anything else."""
    if isinstance(value, bool) or value is None:
        raise QuantityError(f"{value!r} is not a quantity")
    text = str(value).strip()  # a float's str() is its shortest exact repr: 0.1 → "0.1"
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise QuantityError(f"'{text}' is not a Kubernetes quantity")
    try:
        number = Decimal(match.group("number"))
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise QuantityError(f"'{text}' is not a Kubernetes quantity") from None
    suffix = match.group("suffix") or ""
    if suffix in _BINARY:
        value = number * Decimal(1024) ** _BINARY[suffix]
    else:
        exponent = _DECIMAL[suffix] if suffix in _DECIMAL else int(suffix[1:])  # 1e3, 12E6
        if abs(exponent) > 40:
            raise QuantityError(f"'{text}' is out of range")
        value = number.scaleb(exponent)
    if abs(value) >= LIMIT:
        raise QuantityError(f"'{text}' is out of range")
    return value


def gibibytes(value: Any) -> Decimal:
    """A memory or storage quantity in GiB (exact)."""
    with localcontext() as context:
        context.prec = PRECISION
        return parse_quantity(value) / GIB
