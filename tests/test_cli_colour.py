"""Colour on a terminal, plain text when piped or when NO_COLOR is set."""

from __future__ import annotations

import io

import pytest

from compiler.cli import support as cli


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.sys, "stdout", io.StringIO())
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert cli._paint()("x", "bad") == "x"


def test_colour_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.sys, "stdout", _Tty())
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert cli._paint()("x", "bad") == "\x1b[31mx\x1b[0m"


def test_no_color_wins_over_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.sys, "stdout", _Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    assert cli._paint()("x", "bad") == "x"
