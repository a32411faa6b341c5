"""The monthly cost per environment as a self-contained SVG: one bar per environment, stacked
by release (or kind), a legend, a scale. No scripts, fonts or links: it renders the same in a
browser, on GitHub and in an image viewer."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from .estimate import EnvironmentCost
from .report import money

# Tableau 10: distinguishable, and readable by most colour-blind viewers
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac")
WIDTH, HEIGHT = 900, 520
TOP, BOTTOM, LEFT = 60, 70, 90          # the plot's margins
LEGEND = 220                            # the legend's width, right of the plot
TICKS = 5


def escape(text: str) -> str:
    """``text`` escaped for XML character data (xml.sax.saxutils, imported here when a chart
    is drawn: it pulls in urllib and http, a twentieth of a second every meshc command paid)."""
    from xml.sax.saxutils import escape as sax_escape

    return sax_escape(text)


def quoteattr(text: str) -> str:
    """``text`` as a quoted XML attribute value (xml.sax.saxutils, imported when needed)."""
    from xml.sax.saxutils import quoteattr as sax_quoteattr

    return sax_quoteattr(text)


def format_svg(costs: Sequence[EnvironmentCost], by: str = "release") -> str:
    """The chart of ``costs`` (the floor of autoscaled workloads; every segment has a tooltip)."""
    names: list[str] = []
    for cost in costs:
        names += [name for name, _, _ in cost.groups(by) if name not in names]
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    currency = costs[0].prices.currency if costs else "USD"
    top = _nice(max((c.floor.total for c in costs), default=Decimal(0)))
    plot_w = WIDTH - LEFT - LEGEND
    plot_h = HEIGHT - TOP - BOTTOM
    title = f"Estimated monthly cost per environment ({escape(currency)})"
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="13" '
            f'role="img" aria-labelledby="title">'),
           f'<title id="title">{title}</title>',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
           (f'<text x="{LEFT}" y="28" font-size="18" font-weight="bold" fill="#222222">'
            f'{title}</text>'),
           (f'<text x="{LEFT}" y="46" font-size="12" fill="#555555">730 h a month; autoscaled '
            f'workloads at their floor; stacked by {escape(by)}</text>')]
    out += _scale(top, plot_w, plot_h, currency)
    slot = plot_w / max(len(costs), 1)
    bar = min(90.0, slot * 0.6)
    for index, cost in enumerate(costs):
        x = LEFT + slot * index + (slot - bar) / 2
        out += _bar(cost, by, x, bar, top, plot_h, colour)
    out += _legend(names, colour, WIDTH - LEGEND + 20)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _nice(value: Decimal) -> Decimal:
    """The smallest 1, 2, 2.5, 3, 4, 5, 6 or 8 × 10^n at or above ``value`` (at least 1)."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for step in (1, 2, Decimal("2.5"), 3, 4, 5, 6, 8, 10):
        candidate = Decimal(step).scaleb(exponent)
        if candidate >= value:
            return candidate
    return Decimal(10).scaleb(exponent)  # pragma: no cover - 10 × 10^n always fits


def _y(amount: Decimal, top: Decimal, plot_h: float) -> float:
    return TOP + plot_h - float(amount / top) * plot_h


def _scale(top: Decimal, plot_w: float, plot_h: float, currency: str) -> list[str]:
    out = []
    for tick in range(TICKS + 1):
        amount = top * tick / TICKS
        y = _y(amount, top, plot_h)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w:.1f}" y2="{y:.1f}" '
                   f'stroke="{"#888888" if tick == 0 else "#e3e3e3"}" stroke-width="1"/>')
        label = money(amount.quantize(Decimal(1)) if amount >= 10 else amount, currency)
        out.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                   f'fill="#555555">{escape(label.replace(".00", ""))}</text>')
    return out


def _bar(cost: EnvironmentCost, by: str, x: float, width: float, top: Decimal, plot_h: float,
         colour: dict[str, str]) -> list[str]:
    currency = cost.prices.currency
    out = [f'<g class="environment" data-environment={quoteattr(cost.environment)}>']
    base = Decimal(0)
    for name, floor, _ in cost.groups(by):
        amount = floor.total
        if amount <= 0:
            continue
        y_top, y_bottom = _y(base + amount, top, plot_h), _y(base, top, plot_h)
        tip = f"{cost.environment} · {name}: {money(amount, currency)} /month"
        out.append(f'<rect class="segment" data-name={quoteattr(name)} '
                   f'data-monthly="{amount}" x="{x:.1f}" y="{y_top:.1f}" width="{width:.1f}" '
                   f'height="{y_bottom - y_top:.1f}" fill="{colour[name]}" stroke="#ffffff" '
                   f'stroke-width="0.5"><title>{escape(tip)}</title></rect>')
        base += amount
    total = cost.floor.total
    out.append(f'<text class="total" x="{x + width / 2:.1f}" y="{_y(total, top, plot_h) - 6:.1f}" '
               f'text-anchor="middle" font-weight="bold" fill="#222222">'
               f'{escape(money(total, currency))}</text>')
    out.append(f'<text x="{x + width / 2:.1f}" y="{TOP + plot_h + 20:.1f}" text-anchor="middle" '
               f'fill="#222222">{escape(cost.environment)}</text>')
    if cost.ceiling.total != total:
        out.append(f'<text x="{x + width / 2:.1f}" y="{TOP + plot_h + 36:.1f}" '
                   f'text-anchor="middle" font-size="11" fill="#555555">up to '
                   f'{escape(money(cost.ceiling.total, currency))}</text>')
    out.append("</g>")
    return out


def _legend(names: list[str], colour: dict[str, str], x: float) -> list[str]:
    out = [(f'<g class="legend"><text x="{x}" y="{TOP - 4}" font-weight="bold" '
            'fill="#222222">Legend</text>')]
    for index, name in enumerate(names):
        y = TOP + 8 + index * 22
        out.append(f'<rect x="{x}" y="{y}" width="14" height="14" fill="{colour[name]}"/>')
        out.append(f'<text x="{x + 20}" y="{y + 12}" fill="#222222">{escape(name)}</text>')
    out.append("</g>")
    return out
