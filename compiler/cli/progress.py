"""How ``meshc apply`` shows progress: a live view redrawn in place on a terminal, one line per
event otherwise (CI logs), and a summary at the end. Both views are :data:`~compiler.ops.apply.
Reporter` callables; the executor calls them under its lock, the live view's ticker takes the
same lock the view does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO

from ..ops.apply import ApplyResult, Event
from ..plan.plan import Plan

Paint = Callable[[str, str], str]   # (text, role) → text, e.g. coloured for a terminal


def _plain(text: str, role: str) -> str:
    return text


class LineLog:
    """One line per event, with the seconds since the apply started."""

    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.clock = clock
        self.started = clock()

    def __call__(self, event: Event) -> None:
        at = f"[{self.clock() - self.started:6.1f}s]"
        if event.kind == "wave":
            line = f"{at} wave {event.wave}: {', '.join(event.releases)}"
        elif event.kind == "start":
            line = f"{at}   {event.release}: running"
        elif event.kind == "done":
            line = f"{at}   {event.release}: done in {event.seconds:.1f}s"
        else:
            line = f"{at}   {event.release}: FAILED after {event.seconds:.1f}s"
        self.out.write(line + "\n")
        self.out.flush()

    def close(self) -> None:
        pass


_SYMBOLS = {"waiting": ("·", "dim"), "running": ("…", "warn"), "done": ("✓", "good"),
            "failed": ("✗", "bad")}


class LiveView:
    """Per wave, a header and a line per release (waiting, running with its elapsed time,
    done or failed with its duration), redrawn in place with ANSI cursor movement."""

    def __init__(self, out: TextIO, paint: Paint = _plain, interval: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.paint = paint
        self.clock = clock
        self.lock = threading.Lock()
        self.wave = -1
        self.rows: dict[str, tuple[str, float, float]] = {}  # release → (state, start, seconds)
        self.drawn = 0
        self.stopped = threading.Event()
        self.ticker = threading.Thread(target=self._tick, args=(interval,), daemon=True)
        self.ticker.start()

    def __call__(self, event: Event) -> None:
        with self.lock:
            now = self.clock()
            if event.kind == "wave":
                self.wave, self.drawn = event.wave, 0
                self.rows = {name: ("waiting", now, 0.0) for name in event.releases}
            elif event.kind == "start":
                self.rows[event.release] = ("running", now, 0.0)
            else:
                self.rows[event.release] = (event.kind, now, event.seconds)
            self._draw()

    def _tick(self, interval: float) -> None:
        while not self.stopped.wait(interval):
            with self.lock:
                if any(state == "running" for state, _, _ in self.rows.values()):
                    self._draw()

    def _draw(self) -> None:
        now = self.clock()
        width = max((len(name) for name in self.rows), default=0)
        lines = [self.paint(f"wave {self.wave}", "key")]
        for name, (state, start, seconds) in self.rows.items():
            symbol, role = _SYMBOLS[state]
            shown = now - start if state == "running" else seconds
            timing = f"{shown:5.1f}s" if state != "waiting" else ""
            lines.append(f"  {self.paint(symbol, role)} {name:<{width}}  "
                         f"{self.paint(f'{state:<7}', role)} {timing}".rstrip())
        text = f"\x1b[{self.drawn}F" if self.drawn else ""
        text += "".join(f"\x1b[2K{line}\n" for line in lines)
        self.out.write(text)
        self.out.flush()
        self.drawn = len(lines)

    def close(self) -> None:
        self.stopped.set()
        self.ticker.join()


def format_summary(plan: Plan, result: ApplyResult, paint: Paint = _plain,
                   verb: tuple[str, str] = ("apply", "applied")) -> str:
    """Every release with its wave, outcome and duration, then one line: what happened
    (``verb``: the noun and the past, e.g. ``("rollback", "rolled back")``)."""
    width = max((len(s.release) for s in result.steps), default=0)
    count = len(result.steps)
    waves = len(result.waves)
    lines = [(f"summary: {plan.environment}, {count} release{'s' * (count != 1)} in {waves} "
              f"wave{'s' * (waves != 1)}, {result.seconds:.1f}s")]
    roles = {"done": "good", "failed": "bad", "not-started": "dim"}
    for step in result.steps:
        timing = f"{step.seconds:6.1f}s" if step.status != "not-started" else ""
        status = paint(f"{step.status.replace('-', ' '):<11}", roles[step.status])
        lines.append(f"  wave {step.wave}  {step.release:<{width}}  {status} {timing}".rstrip())
    failed = len(result.having("failed"))
    if failed:
        skipped = len(result.having("not-started"))
        text = (f"{verb[0]} of {plan.environment} failed: {failed} release{'s' * (failed != 1)} "
                "failed" + (f", {skipped} not started" if skipped else ""))
        lines.append(paint(text, "bad"))
    elif result.stopped_after is not None:
        skipped = len(result.having("not-started"))
        lines.append(paint(f"{verb[0]} of {plan.environment} stopped after wave "
                           f"{result.stopped_after}: verify failed"
                           + (f", {skipped} not started" if skipped else ""), "bad"))
    else:
        lines.append(paint(f"{verb[1]} {plan.environment}: {count} release"
                           f"{'s' * (count != 1)}", "good"))
    return "\n".join(lines) + "\n"
