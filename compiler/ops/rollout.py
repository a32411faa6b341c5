"""``meshc apply ENV`` for an environment deployed in regions: its rollout, stage by stage.

The regions of one stage are applied in parallel (each region's plan as ``meshc apply
ENV/REGION`` runs it: wave by wave); a stage starts once every region of the previous one
succeeded, so a failure stops every later stage. The caller confirms a protected environment
once, for the whole rollout, before calling :func:`execute_rollout`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..plan.plan import Plan
from .apply import ApplyResult

# runs one region's plan (the caller binds helm, secrets, reporting): its result
RegionRunner = Callable[[Plan], ApplyResult]


@dataclass(frozen=True, slots=True)
class RegionRun:
    """One region of the rollout: its stage, its plan and how it went (None: not started,
    because an earlier stage failed)."""

    stage: int
    plan: Plan
    result: ApplyResult | None


@dataclass(frozen=True, slots=True)
class RolloutResult:
    environment: str
    runs: tuple[RegionRun, ...]

    @property
    def ok(self) -> bool:
        return all(run.result is not None and run.result.ok for run in self.runs)

    @property
    def failed_stage(self) -> int | None:
        """The stage that failed (later stages did not start), or None."""
        return next((run.stage for run in self.runs
                     if run.result is not None and not run.result.ok), None)


def execute_rollout(environment: str, stages: Sequence[Sequence[Plan]],
                    run_region: RegionRunner) -> RolloutResult:
    """Run ``stages`` in order, the region plans of a stage in parallel; after a stage with a
    failed region, no later stage starts."""
    runs: list[RegionRun] = []
    failed = False
    for index, stage in enumerate(stages):
        if failed:
            runs += [RegionRun(index, plan, None) for plan in stage]
            continue
        with ThreadPoolExecutor(max_workers=max(1, len(stage))) as pool:
            results = list(pool.map(run_region, stage))
        runs += [RegionRun(index, plan, result) for plan, result in zip(stage, results)]
        failed = not all(result.ok for result in results)
    return RolloutResult(environment, tuple(runs))


def rollout_summary(result: RolloutResult) -> list[str]:
    """One line per region: how it went, in rollout order."""
    lines = []
    for run in result.runs:
        if run.result is None:
            state = "not started (an earlier stage failed)"
        elif run.result.ok:
            state = f"done: {len(run.result.steps)} release(s)"
        else:
            failed = [s.release for s in run.result.having("failed")]
            state = "failed" + (f": {', '.join(failed)}" if failed else "")
        lines.append(f"stage {run.stage} {run.plan.region}: {state}")
    return lines
