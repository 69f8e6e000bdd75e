"""The stage contract: every nightly / monthly step is made of stages, and a step's figures are
written to the manifest in the order the step gives them."""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING

from clearing.config import Home, Settings, WorkDir
from clearing.pipeline.monthly import MONTHLY_STAGES, monthly_steps
from clearing.pipeline.nightly import NIGHTLY_STAGES, RATE_FIGURES, nightly_steps
from clearing.pipeline.run import Run
from clearing.pipeline.runlog import QuietLog
from clearing.pipeline.steps import Step, run_steps
from clearing.stage import Stage, StageContext, StepResult, stage

if TYPE_CHECKING:
    from pathlib import Path


def test_every_nightly_step_is_made_of_stages() -> None:
    steps = nightly_steps()
    assert [s.name for s in steps] == NIGHTLY_STAGES
    for step in steps:
        assert step.stages
        for s in step.stages:
            assert isinstance(s, Stage), (step.name, s)
            assert callable(s.run)
    rate = next(s for s in steps if s.name == "rate")
    assert [s.name for s in rate.stages] == ["rate", "outbound"]  # rating, then outbound


def test_every_monthly_step_is_made_of_stages() -> None:
    steps = monthly_steps()
    assert [s.name for s in steps] == MONTHLY_STAGES
    assert all(isinstance(s, Stage) for step in steps for s in step.stages)


def test_the_rate_step_merges_its_stages_figures_in_the_manifest_order() -> None:
    # the rate stage's figures in another order than the manifest's, the outbound's apart
    figures = [f for f in RATE_FIGURES if f != "outbound_files"]
    rating = StepResult("rate", {f: i for i, f in enumerate(reversed(figures))})
    outbound = StepResult("outbound", {"outbound_files": 2})
    step = Step("rate", (), figures=RATE_FIGURES)
    assert list(step.detail([rating, outbound])) == list(RATE_FIGURES)
    # a step without an order keeps its stages' order
    first = figures[-1]  # the first of the rate stage's own order
    assert list(Step("x", ()).detail([outbound, rating]))[:2] == ["outbound_files", first]


def test_a_step_result_goes_into_the_manifest_as_given(tmp_path: Path) -> None:
    out = tmp_path / "out" / "file"
    out.parent.mkdir()
    out.write_bytes(b"x")

    @stage("first")
    def first(ctx: StageContext) -> StepResult:
        return StepResult(
            "first",
            {"b": 2, "a": 1, "c": 3},
            outputs=[out],
            problems=["first: a data problem"],
            facts={"thing": "out/file"},
        )

    @stage("second")
    def second(ctx: StageContext) -> StepResult:
        return StepResult("second", {"n": 0}, status="skipped")

    @stage("third")
    def third(ctx: StageContext) -> StepResult:
        raise AssertionError("a switched-off step does not run")

    steps = [
        Step("first", (first,)),
        Step("second", (second,)),
        Step("third", (third,), switch="send"),
    ]
    run = Run(tmp_path, "nightly", "2026-11-22", [s.name for s in steps], QuietLog())
    ctx = StageContext(
        WorkDir(tmp_path), Settings(home=Home(tadig="HKGCL")), day=date(2026, 11, 22), send=False
    )
    results = run_steps(run, steps, ctx)
    assert list(results) == ["first", "second"]
    run.finish()
    manifest = json.loads((run.dir / "manifest.json").read_text(encoding="utf-8"))
    stages = {s["name"]: s for s in manifest["stages"]}
    assert list(stages["first"]["detail"]) == ["b", "a", "c"]  # the stage's order, as written
    assert [stages[n]["status"] for n in ("first", "second", "third")] == [
        "ok",
        "skipped",
        "skipped",
    ]
    assert manifest["problems"] == ["first: a data problem"]
    assert manifest["exit_code"] == 1
    assert manifest["thing"] == "out/file"
    assert [o["path"] for o in manifest["outputs"]] == ["out/file"]
