"""plan.json is written by a small encoder of our own (json's indented output is pure Python and
slow at a thousand releases); it must write exactly what ``json.dumps(indent=2)`` writes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.plan import dumps_indented

_scalars = st.none() | st.booleans() | st.integers() | st.text() | \
    st.floats(allow_nan=False, allow_infinity=False)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) |
                     st.dictionaries(st.text(), inner, max_size=4), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_same_bytes_as_json_dumps(data: Any) -> None:
    assert dumps_indented(data) == json.dumps(data, indent=2, ensure_ascii=False)


def test_unicode_control_characters_and_nesting() -> None:
    data = {"é": ["\u2028", "\x00", "\"quoted\"", {"k": []}, {}], "n": [1, 2.5, None, True]}
    assert dumps_indented(data) == json.dumps(data, indent=2, ensure_ascii=False)
