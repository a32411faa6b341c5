"""Cost estimates for people and machines: text tables, JSON for CI, Markdown for pull-request
comments, and a change's summary (the end of ``meshc plan``). The SVG chart is in :mod:`.svg`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from .estimate import KEYS, CostChange, EnvironmentCost, Item, Money
from .prices import HOURS, SYMBOLS, UNITS

SHORT_UNITS = {"cpu": "vCPU", "memory": "GiB", "gpu": "GPU", "storage": "GiB",
               "loadBalancer": "LB"}
COLUMNS = (("cpu", "CPU"), ("memory", "MEMORY"), ("storage", "STORAGE"), ("gpu", "GPU"),
           ("loadBalancer", "LB"))


def money(amount: Decimal, currency: str, signed: bool = False) -> str:
    """``$1,234.56`` (``-$3.00``, ``+$3.00`` when ``signed``); ``1,234.56 CHF`` without a
    symbol."""
    sign = "-" if amount < 0 else "+" if signed else ""
    text = f"{abs(amount):,.2f}"
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def percent(before: Decimal, after: Decimal) -> str:
    """The change in percent, one decimal, half up (``new`` from nothing)."""
    if before == 0:
        return "new" if after else "0.0%"
    change = _percent(before, after)
    return f"{'+' if change >= 0 else ''}{change}%"


def _percent(before: Decimal, after: Decimal) -> Decimal:
    with localcontext() as context:
        context.prec = 100  # any two sums of quantities × prices: the quotient fits
        return ((after - before) * 100 / before).quantize(Decimal("0.1"), ROUND_HALF_UP)


# --- text -----------------------------------------------------------------------------------

def format_text(costs: Sequence[EnvironmentCost], by: str = "release") -> str:
    """The table of every environment in ``costs``; a summary first when there are several."""
    blocks = []
    if len(costs) > 1:
        blocks.append(_summary(costs))
    blocks += [_environment_text(cost, by) for cost in costs]
    return "\n".join(blocks)


def _summary(costs: Sequence[EnvironmentCost]) -> str:
    rows = [["ENVIRONMENT", "MONTHLY", "CEILING", *(title for _, title in COLUMNS)]]
    for cost in costs:
        cur = cost.prices.currency
        rows.append([cost.environment, money(cost.floor.total, cur),
                     money(cost.ceiling.total, cur),
                     *(_cell(cost.floor.get(key), cur) for key, _ in COLUMNS)])
    note = f"Estimated monthly cost ({int(HOURS)} h), floor of autoscaled workloads; ceiling " \
           "at their maximum"
    return note + "\n" + _table(rows) + "\n"


def _environment_text(cost: EnvironmentCost, by: str) -> str:
    cur = cost.prices.currency
    head = f"{cost.environment}: {money(cost.floor.total, cur)} /month"
    if cost.ceiling.total != cost.floor.total:
        head += f" (up to {money(cost.ceiling.total, cur)} at autoscaling maximum)"
    rows = [[by.upper(), *(title for _, title in COLUMNS), "MONTHLY", "CEILING"]]
    for name, floor, ceiling in cost.groups(by):
        declared = by == "release" and (r := cost.release(name)) is not None and r.declared
        rows.append([name + (" (declared)" if declared else ""),
                     *(_cell(floor.get(key), cur) for key, _ in COLUMNS),
                     money(floor.total, cur), money(ceiling.total, cur)])
    rows.append(["total", *(_cell(cost.floor.get(key), cur) for key, _ in COLUMNS),
                 money(cost.floor.total, cur), money(cost.ceiling.total, cur)])
    lines = [head, _indent(_table(rows)), "  " + prices_line(cost)]
    scaled = [i for r in cost.releases for i in r.items if i.scaling and not r.declared]
    if scaled:
        lines.append("  replicas: " + "; ".join(_scaling(i) for i in scaled))
    if cost.unpriced:
        lines.append("  not estimated (listed, never counted silently):")
        lines += [f"    {u.release}: {u.what}: {u.why}" for u in cost.unpriced]
    return "\n".join(lines) + "\n"


def _scaling(item: Item) -> str:
    count = f"{item.floor}" if item.floor == item.ceiling else f"{item.floor}–{item.ceiling}"
    return f"{item.kind}/{item.name} {count} ({item.scaling})"


def prices_line(cost: EnvironmentCost) -> str:
    p = cost.prices
    parts = [f"{key} {p.of(key)}/{SHORT_UNITS[key]}" for key in KEYS]
    source = "OpenCost's defaults" if len(p.defaults) == len(KEYS) else \
        "the meshfile" if not p.defaults else f"the meshfile; {', '.join(p.defaults)}: " \
        "OpenCost's defaults"
    nodes = f"; nodes: {p.nodes}" if p.nodes is not None else ""
    return f"prices per hour ({p.currency}, {source}): {', '.join(parts)}{nodes}"


def _cell(amount: Decimal, currency: str) -> str:
    return money(amount, currency) if amount else "-"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                          strict=True)]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


# --- JSON -------------------------------------------------------------------------------------

def _num(value: Decimal) -> float | int:
    """A JSON number: exact decimals print as written (money already has two places)."""
    normal = value.normalize()
    return int(normal) if normal == normal.to_integral_value() else float(normal)


def _money_json(m: Money) -> dict[str, Any]:
    return {"monthly": _num(m.total), **{key: _num(m.get(key)) for key in KEYS}}


def environment_json(cost: EnvironmentCost) -> dict[str, Any]:
    p = cost.prices
    return {
        "environment": cost.environment, "currency": p.currency, "hoursPerMonth": int(HOURS),
        "prices": {key: _num(p.of(key)) for key in KEYS}, "nodes": p.nodes,
        "defaultPrices": list(p.defaults),
        "monthly": _num(cost.floor.total), "ceiling": _num(cost.ceiling.total),
        "byResource": _money_json(cost.floor),
        "releases": [{"release": r.release, "declared": r.declared,
                      "monthly": _num(r.floor.total), "ceiling": _num(r.ceiling.total),
                      "byResource": _money_json(r.floor),
                      "items": [_item_json(i) for i in r.items]} for r in cost.releases],
        "notEstimated": [{"release": u.release, "what": u.what, "why": u.why}
                         for u in cost.unpriced],
    }


def _item_json(item: Item) -> dict[str, Any]:
    return {"kind": item.kind, "name": item.name,
            "each": {key: _num(item.each.get(key)) for key in KEYS if item.each.get(key)},
            "replicas": {"floor": item.floor, "ceiling": item.ceiling},
            "scaling": item.scaling or None,
            "monthly": _num(item.floor_cost.total), "ceiling": _num(item.ceiling_cost.total)}


def format_json(costs: Sequence[EnvironmentCost], by: str = "release") -> str:
    groups = {c.environment: [{"name": n, "monthly": _num(f.total), "ceiling": _num(c_.total)}
                              for n, f, c_ in c.groups(by)] for c in costs}
    data = {"units": {key: f"per {UNITS[key]} per hour" for key in KEYS},
            "environments": [{**environment_json(c), "by": by, "groups": groups[c.environment]}
                             for c in costs]}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# --- Markdown ---------------------------------------------------------------------------------

def format_markdown(costs: Sequence[EnvironmentCost], by: str = "release") -> str:
    """GitHub-flavoured Markdown: a summary table, then one table per environment."""
    out = ["## Estimated monthly cost", ""]
    out += ["| Environment | Monthly | Ceiling |", "|---|--:|--:|"]
    out += [f"| {c.environment} | {money(c.floor.total, c.prices.currency)} | "
            f"{money(c.ceiling.total, c.prices.currency)} |" for c in costs]
    for cost in costs:
        cur = cost.prices.currency
        out += ["", f"### {cost.environment}: {money(cost.floor.total, cur)} /month", "",
                f"| {by.capitalize()} | CPU | Memory | Storage | GPU | LB | Monthly | Ceiling |",
                "|---|--:|--:|--:|--:|--:|--:|--:|"]
        for name, floor, ceiling in cost.groups(by):
            out.append(f"| {_md(name)} | " + " | ".join(_cell(floor.get(k), cur)
                                                       for k, _ in COLUMNS)
                       + f" | {money(floor.total, cur)} | {money(ceiling.total, cur)} |")
        out.append("| **total** | " + " | ".join(_cell(cost.floor.get(k), cur)
                                                 for k, _ in COLUMNS)
                   + f" | **{money(cost.floor.total, cur)}** | "
                     f"**{money(cost.ceiling.total, cur)}** |")
        if cost.unpriced:
            out += ["", "Not estimated:", ""]
            out += [f"- `{u.release}`: {_md(u.what)}: {_md(u.why)}" for u in cost.unpriced]
        out += ["", f"<sub>{_md(prices_line(cost))}</sub>"]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


# --- a change ---------------------------------------------------------------------------------

def change_text(change: CostChange) -> str:
    """``cost: $1,234.56 → $1,290.10 /month (+$55.54, +4.5%)``, the ceiling, per release."""
    before, after = change.before, change.after
    cur = after.prices.currency
    lines = [_delta_line("cost", before.floor.total, after.floor.total, cur, " /month")]
    if before.ceiling.total != before.floor.total or after.ceiling.total != after.floor.total:
        lines.append(_delta_line("  ceiling", before.ceiling.total, after.ceiling.total, cur))
    for name, fa, fb, ca, cb in change.releases:
        line = _delta_line(f"  {name}", fa.total, fb.total, cur)
        if (ca.total, cb.total) != (fa.total, fb.total):
            line += f"; ceiling {money(ca.total, cur)} → {money(cb.total, cur)}"
        lines.append(line)
    if after.unpriced:
        lines.append(f"  ({len(after.unpriced)} item{'s' * (len(after.unpriced) != 1)} not "
                     "estimated: meshc cost " + after.environment + ")")
    return "\n".join(lines) + "\n"


def _delta_line(label: str, before: Decimal, after: Decimal, cur: str, unit: str = "") -> str:
    if before == after:
        return f"{label}: {money(after, cur)}{unit} (unchanged)"
    return (f"{label}: {money(before, cur)} → {money(after, cur)}{unit} "
            f"({money(after - before, cur, signed=True)}, {percent(before, after)})")


def _percent_number(before: Decimal, after: Decimal) -> float | int | None:
    """The change in percent as a JSON number (one decimal, half up); None from nothing."""
    if before == 0:
        return None if after else 0
    return _num(_percent(before, after))


def change_json(change: CostChange) -> dict[str, Any]:
    before, after = change.before, change.after
    return {
        "currency": after.prices.currency,
        "before": {"monthly": _num(before.floor.total), "ceiling": _num(before.ceiling.total)},
        "after": {"monthly": _num(after.floor.total), "ceiling": _num(after.ceiling.total)},
        "delta": {"monthly": _num(after.floor.total - before.floor.total),
                  "ceiling": _num(after.ceiling.total - before.ceiling.total),
                  "percent": _percent_number(before.floor.total, after.floor.total)},
        "releases": [{"release": name, "before": _num(fa.total), "after": _num(fb.total),
                      "delta": _num(fb.total - fa.total), "ceilingBefore": _num(ca.total),
                      "ceilingAfter": _num(cb.total)}
                     for name, fa, fb, ca, cb in change.releases],
        "notEstimated": len(after.unpriced),
    }


def format_change_json(changes: Sequence[CostChange]) -> str:
    return json.dumps({"environments": [{"environment": c.after.environment, **change_json(c)}
                                        for c in changes]}, indent=2, ensure_ascii=False) + "\n"
