"""The steps of a run and the loop that runs them.

A :class:`Step` is what the manifest lists as one stage: a name and the stages that do it, in
order (the nightly's ``rate`` is the rating stage, then the outbound stage). :func:`run_steps`
runs a list of steps for one :class:`~clearing.stage.StageContext`: each step through
:meth:`Run.stage` (progress events, the manifest rewritten after the step, a stopping error),
then the stages' results into the run (figures, inputs, outputs, problems and their exit-code
class, top-level facts, status). Stages themselves know nothing of the run.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clearing._memory import release_memory
from clearing.pipeline.run import StageFailed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from clearing.errors import ClearingError
    from clearing.pipeline.run import Run
    from clearing.stage import Stage, StageContext, StepResult

__all__ = ["Step", "run_steps"]


@dataclass(frozen=True)
class Step:
    """One step of a run: its manifest name and the stages that do it.

    Attributes:
        name: the name in the manifest and the progress events.
        stages: run in order; the step's figures are theirs, merged.
        continue_on: errors that fail the step but not the run (e.g. a partner unreachable).
        switch: the :class:`~clearing.stage.StageContext` flag that turns the step on
            (``collect``, ``send``); off: the step is ``skipped``.
        figures: the order of the merged figures in the manifest (default: the stages' order).
    """

    name: str
    stages: tuple[Stage, ...]
    continue_on: tuple[type[ClearingError], ...] = ()
    switch: str | None = None
    figures: tuple[str, ...] = ()

    def detail(self, results: Sequence[StepResult]) -> dict[str, Any]:
        """The step's figures for the manifest: its stages' merged in :attr:`figures` order."""
        merged: dict[str, Any] = {}
        for r in results:
            merged.update(r.detail)
        if not self.figures:
            return merged
        return {k: merged[k] for k in self.figures if k in merged} | {
            k: v for k, v in merged.items() if k not in self.figures
        }


def run_steps(run: Run, steps: Sequence[Step], ctx: StageContext) -> dict[str, list[StepResult]]:
    """Run ``steps`` in order into ``run``; return the stages' results by step name.

    A step whose switch is off is marked ``skipped``. A stopping error ends the loop (the
    manifest says where); the results of the steps done so far are returned.
    """
    results: dict[str, list[StepResult]] = {}
    with contextlib.suppress(StageFailed):
        for step in steps:
            if step.switch is not None and not getattr(ctx, step.switch):
                run.mark(step.name, "skipped")
                continue
            run.stage(
                step.name,
                lambda step=step: _run_step(run, step, ctx, results),  # type: ignore[misc]
                continue_on=step.continue_on,
            )
            # what the stage freed goes back before the next one: the run's peak is the
            # biggest stage's, not the stages' sum
            release_memory()
    return results


def _run_step(
    run: Run, step: Step, ctx: StageContext, results: dict[str, list[StepResult]]
) -> dict[str, Any]:
    got = [s.run(ctx) for s in step.stages]
    for r in got:
        run.inputs += r.inputs
        run.outputs += r.outputs
        run.facts.update(r.facts)
        for message in r.problems:
            run.problem(r.exit_code, message)
        for message in r.warnings:
            run.warning(message)
        if r.status != "ok":
            run.mark(step.name, r.status)
    results[step.name] = got
    return step.detail(got)
