"""The plan as GitHub-flavoured Markdown (``meshc plan ENV -o markdown``): a pull-request comment.

A summary table (one row per step, wave by wave) and, for each release the review finds
changed, new or removed, a collapsible ``<details>`` section with its field-level changes. The
same review as the text form; only the layout differs. Pure: text in, text out.
"""

from __future__ import annotations

import re

from ..cost.estimate import CostChange
from ..cost.report import change_text
from .diff import ReleaseReview, Review, review_lines
from .plan import Plan, RolloutPlan, Step, _chart_text, _status

_FENCE = re.compile(r"`{3,}")


def format_markdown(plan: Plan, review: Review | None = None,
                    cost: CostChange | None = None) -> str:
    """The plan of one environment as Markdown: a heading, the facts line, the summary table,
    the changes per release (collapsed), what is not deployed, notes, and the review's summary;
    with ``cost``, the monthly estimate before and after (docs/cost.md), as ``-o text`` ends.
    ``review`` None: no change column and no sections (as ``-o text`` without a review)."""
    reviews = review.by_release() if review else {}
    lines = [f"### meshc plan for `{plan.environment}`", "", _facts(plan), ""]
    header = "| wave | release | namespace | chart | needs |" + (" change |" if review else "")
    lines += [header, "|---:|---|---|---|---|" + ("---|" if review else "")]
    for step in plan.steps:
        row = (f"| {step.wave} | `{_cell(step.release)}` | `{_cell(step.namespace)}` | "
               f"{_cell(_chart_text(step))} | {_cell(', '.join(step.needs)) or '—'} |")
        if review:
            found = reviews.get(step.release)
            row += f" {_cell(_status(found)) if found else '—'} |"
        lines.append(row)
    for step in plan.steps:
        found = reviews.get(step.release)
        if found is not None and found.status != "unchanged":
            lines += _details(step, found)
    removed = [r for r in (review.releases if review else ()) if r.status == "removed"]
    if removed:
        lines += ["", "**In the committed output but no longer planned** (delete with "
                  "`helm uninstall` if intended): " + ", ".join(f"`{r.release}`" for r in removed)]
    if plan.disabled:
        lines += ["", "**Not deployed in this environment:**", ""]
        lines += [f"- `{name}` ({_cell(why)})" for name, why in plan.disabled]
    if plan.notes:
        lines += ["", "**Notes:**", ""]
        lines += [f"- {_cell(note)}" for note in plan.notes]
    if review is not None:
        lines += ["", f"_{_cell(review.summary)}_"]
    if cost is not None:
        lines += ["", "**Estimated monthly cost** (`meshc cost`):", "", "```",
                  change_text(cost).rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"


def _facts(plan: Plan) -> str:
    facts = []
    if plan.protected:
        facts.append("**protected**: applying asks for confirmation")
    if plan.kube_context:
        facts.append(f"kube-context `{plan.kube_context}`")
    count = len(plan.steps)
    facts.append(f"{count} release{'s' * (count != 1)} in {plan.waves} "
                 f"wave{'s' * (plan.waves != 1)}")
    facts.append(f"for Helm {plan.helm_version}")
    return " · ".join(facts)


def _details(step: Step, review: ReleaseReview) -> list[str]:
    """One release's changes, collapsed: ``<details>`` with the text form's lines in a diff
    block (``+`` added, ``-`` removed, ``~`` changed)."""
    body = review_lines(review, "")
    if review.status == "new":
        body = body or ["+ new: not rendered yet"]
    if review.status == "removed":
        body = body or [f"- {step.release}"]
    if step.secrets:
        files = ", ".join(sorted({item.file for item in step.secrets}))
        body.append(f"  secrets: decrypted when the step runs, from {files}")
    fence = _fence(body)
    summary = (f"<summary><code>{_html(step.release)}</code> (wave {step.wave}): "
               f"{_html(_status(review))}</summary>")
    return ["", "<details>", summary, "", f"{fence}diff", *body, fence, "", "</details>"]


def _fence(body: list[str]) -> str:
    """A code fence longer than any run of backticks in ``body`` (values are user text)."""
    longest = max((len(m.group()) for line in body for m in _FENCE.finditer(line)), default=2)
    return "`" * max(3, longest + 1)


def _cell(text: str) -> str:
    """``text`` safe in a table cell or a list item: pipes escaped, one line, no HTML."""
    return _html(text).replace("|", "\\|").replace("\n", " ")


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def format_rollout_markdown(rollout: RolloutPlan, reviews: dict[str, Review | None],
                            costs: dict[str, CostChange] | None = None) -> str:
    """An environment's plan through its regions as Markdown: the rollout's stages, then each
    region's plan as ``format_markdown`` gives it, in rollout order."""
    order = " → ".join(" + ".join(f"`{p.region}`" for p in stage) for stage in rollout.stages)
    protected = " Protected: applying asks for confirmation once." if rollout.protected else ""
    rollout_line = (f"Rollout: {order} (the regions of a stage in parallel; a failure stops "
                    f"every later stage).{protected}")
    lines = [f"## meshc plan for `{rollout.environment}`", "", rollout_line, ""]
    parts = ["\n".join(lines)]
    for stage in rollout.stages:
        for plan in stage:
            parts.append(format_markdown(plan, reviews.get(plan.environment),
                                         (costs or {}).get(plan.environment)))
    return "\n".join(parts)
