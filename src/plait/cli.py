"""The command line: `main(argv) -> int`, one function per command.

Commands parse their arguments, call the library, and print. Every error plait
raises on purpose carries its exit code (2 plan or usage, 3 environment); the
process exits with it after a one-paragraph message on stderr.
"""

# No `from __future__ import annotations` here: typer reads every command's
# annotations when it parses, and evaluating them from strings took ~5 ms per start.
import contextlib
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from plait import errors
from plait.cli_more import branch_now, print_version, replace_unshowable, show_usage_error
from plait.cliio import (
    Exit,
    collector_paused,
    err,
    error_json,
    load_plan_file,
    open_store,
    out,
    output_file,
    output_folder,
    output_lost,
    pick_run,
    plan_history,
    print_json,
    run_coroutine,
    write_output,
)
from plait.textsafe import clean_text

app = typer.Typer(
    name="plait",
    help="Run many coding agents in parallel on one git repository, safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

PlanArg = Annotated[
    Path | None,
    typer.Argument(
        metavar="PLAN",
        help="The plan file (default: plait.yaml here or in a folder above, up to the "
        "repository's top level).",
        show_default=False,
    ),
]
JobsOpt = Annotated[
    int | None, typer.Option("--jobs", "-j", min=1, max=256, help="Agents at once.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=print_version,
            help="Print plait's version and exit.",
        ),
    ] = False,
) -> None:
    """Run many coding agents in parallel on one git repository, safely."""


# --- plans --------------------------------------------------------------------


@app.command()
def init(
    backend: Annotated[
        str, typer.Option(help="Default backend for the agent profiles.")
    ] = "claude",
    force: Annotated[
        bool,
        typer.Option(
            help="Overwrite existing files; write a plan here even if a folder above has one."
        ),
    ] = False,
) -> None:
    """Write a commented plait.yaml and agent profiles for the common roles."""
    from plait.roles import write_profiles
    from plait.starter import STARTER_PLAN, check_init

    check_init(backend, Path.cwd(), force=force)
    plan = Path("plait.yaml")
    if plan.exists() and not force:
        err().print("plait.yaml exists; kept it (use --force to overwrite)")
    else:
        plan.write_text(STARTER_PLAN, encoding="utf-8")
        out().print(f"wrote {plan}")
    for path in write_profiles(Path.cwd(), backend, force=force):
        out().print(f"wrote {path.relative_to(Path.cwd())}")
    out().print("next: edit plait.yaml, then `plait plan` to see what would run in parallel")


@app.command()
def plan(
    path: PlanArg = None,
    as_json: JsonOpt = False,
    graph: Annotated[str | None, typer.Option(help="Print the graph: mermaid or dot.")] = None,
    jobs: JobsOpt = None,
    html: Annotated[Path | None, typer.Option(help="Write the predicted timeline as HTML.")] = None,
) -> None:
    """Validate a plan and show what runs in parallel, what waits, and why."""
    from plait import analysis, planview

    if graph is not None and as_json:
        raise errors.UsageError("--graph prints the graph in its own format: give it alone")
    if html is not None:
        output_file(html, "--html")
    loaded = load_plan_file(path)
    if loaded.base is not None:
        from plait.runcheck import check_base

        run_coroutine(check_base(loaded))
    history = plan_history(loaded)
    with collector_paused():
        result = analysis.analyze(loaded, jobs=jobs, history=history)
    if graph is not None:
        if graph not in ("mermaid", "dot"):
            raise errors.UsageError("--graph takes mermaid or dot")
        sys.stdout.write(
            planview.to_mermaid(result) if graph == "mermaid" else planview.to_dot(result)
        )
        sys.stdout.write("\n")
    elif as_json:
        print_json(planview.to_json(result))
    else:
        out().print(planview.render_text(result))
    if html is not None:
        from plait.reports import predicted_html

        write_output(html, predicted_html(result), "--html")
        err().print(f"wrote {html}")


@app.command()
def schema() -> None:
    """Print the plan's JSON Schema (for editors)."""
    from plait.planfile import plan_json_schema

    print_json(plan_json_schema())


# --- runs ---------------------------------------------------------------------


@app.command()
def run(
    path: PlanArg = None,
    jobs: JobsOpt = None,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Cancel the rest on a failure.")
    ] = False,
    apply: Annotated[
        bool, typer.Option("--apply", help="Merge the result into the current branch.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a plan: every agent in its own worktree, results merged through a queue."""
    from plait.live import open_display
    from plait.runcheck import check_plan_place
    from plait.runend import finish_run
    from plait.session import RunSettings, start_run
    from plait.statehome import state_home

    loaded = load_plan_file(path)
    root = (loaded.root or Path.cwd()).resolve()
    check_plan_place(root, Path.cwd())
    home = state_home(root)  # found once (a git call) for the run and its summary
    with open_display(as_json, None if as_json else out()) as sink:
        settings = RunSettings(jobs=jobs, fail_fast=fail_fast, sink=sink)
        outcome = run_coroutine(start_run(loaded, settings, home=home))
    finish_run(outcome.run_id, root, outcome.exit_code, outcome.messages, as_json, apply, home)


@app.command()
def resume(
    run_id: Annotated[
        str | None, typer.Argument(metavar="RUN", help="Run id (default: latest).")
    ] = None,
    jobs: JobsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Continue an interrupted run where it stopped."""
    from plait.live import open_display
    from plait.resume import resume_run
    from plait.runend import finish_run
    from plait.session import RunSettings

    with open_display(as_json, None if as_json else out()) as sink:
        settings = RunSettings(jobs=jobs, sink=sink)
        outcome = run_coroutine(resume_run(run_id, settings, cwd=Path.cwd()))
    finish_run(outcome.run_id, Path.cwd(), outcome.exit_code, outcome.messages, as_json, False)


@app.command()
def status(
    run_id: Annotated[
        str | None, typer.Argument(metavar="RUN", help="Run id (default: latest).")
    ] = None,
    as_json: JsonOpt = False,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Follow the run's events; exit as the run does."),
    ] = False,
) -> None:
    """Show one run's state."""
    from plait.status import follow_events, run_json, status_text

    with open_store(Path.cwd()) as store:
        picked = pick_run(store, run_id)
        store.run(picked)  # raises RunNotFound for an unknown id
        if follow:
            code = follow_events(store, picked, as_json=as_json, write=sys.stdout.write)
            raise Exit(code)
        data = run_json(store, picked)
        plan_json = store.run(picked).plan_json
    gone = branch_now(data, plan_json)
    if as_json:
        print_json(data)
    else:
        shown_at = time.time() if data["status"] == "running" else None
        interrupted = data["status"] == "interrupted"
        import json

        python = json.loads(plan_json or "{}").get("text") is None  # started from Python
        shown = status_text(
            data, branch_gone=gone and interrupted, now=shown_at, from_python=python
        )
        out().print(shown)


@app.command()
def runs(as_json: JsonOpt = False) -> None:
    """List the runs of this repository, newest first."""
    from plait.status import runs_json, runs_text

    try:
        store = open_store(Path.cwd())
    except errors.RunNotFound:  # no state yet: an empty list, not an error
        data = []
    else:
        with store:
            data = runs_json(store)
    if as_json:
        print_json(data)
    else:
        out().print(runs_text(data))


@app.command()
def logs(
    run_id: Annotated[str, typer.Argument(metavar="RUN")],
    task: Annotated[str, typer.Argument(metavar="TASK")],
    attempt: Annotated[int | None, typer.Option(help="Attempt number (default: last).")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the attempt ends.")
    ] = False,
) -> None:
    """Print an attempt's log, as the agent wrote it."""
    from plait.logview import show_log

    def write(data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()

    with open_store(Path.cwd()) as store:
        show_log(
            store, run_id, task, attempt, follow=follow, write=write,
            say=lambda text: sys.stderr.write(text + "\n"),
        )  # fmt: skip


@app.command()
def report(
    run_id: Annotated[
        str | None, typer.Argument(metavar="RUN", help="Run id (default: latest).")
    ] = None,
    html: Annotated[Path | None, typer.Option(help="Write a self-contained HTML timeline.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Timeline, critical path, time saved and cost of a run."""
    from plait import report as rendering
    from plait.report_html import render_html
    from plait.reports import timeline_from_store

    if html is not None:
        output_file(html, "--html")
    with open_store(Path.cwd()) as store:
        timeline = timeline_from_store(store, pick_run(store, run_id))
    if html is not None:
        write_output(html, render_html(timeline), "--html")
        err().print(f"wrote {html}")
    if as_json:
        print_json(rendering.to_json(timeline))
    elif html is None:
        out().print(rendering.render_text(timeline))


@app.command("apply")
def apply_cmd(run_id: Annotated[str, typer.Argument(metavar="RUN")]) -> None:
    """Merge a run's result into the current branch (clean tree, run not in progress)."""
    from plait.apply import apply_run

    out().print(run_coroutine(apply_run(Path.cwd(), run_id)))


@app.command()
def clean(
    run_id: Annotated[
        str | None, typer.Argument(metavar="RUN", help="Run id (default: all).")
    ] = None,
    branches: Annotated[
        bool, typer.Option(help="Also delete plait/<run> result branches.")
    ] = False,
) -> None:
    """Remove plait's worktrees (and task branches) for one run or all runs."""
    from plait.apply import clean_runs

    out().print(run_coroutine(clean_runs(Path.cwd(), run_id, branches=branches)))


@app.command()
def agents(path: PlanArg = None, as_json: JsonOpt = False) -> None:
    """Each role, its backend, and whether its program is installed."""
    from plait.agents.inventory import inventory, inventory_text
    from plait.cli_more import placed_rows, shown_rows

    loaded = load_plan_file(path)
    rows = placed_rows(inventory(loaded), loaded)
    if as_json:
        print_json(rows)
    else:
        out().print(inventory_text(shown_rows(rows, loaded), loaded.root))
    if any(not r["ok"] for r in rows):
        raise Exit(3)


@app.command()
def demo(
    keep: Annotated[Path | None, typer.Option(help="Create the demo repository here.")] = None,
    jobs: JobsOpt = 4,
) -> None:
    """A throwaway repository and a plan of scripted agents, run end to end."""
    from plait.demo import run_demo

    if keep is not None:
        shop = output_folder(keep, "--keep") / "shop"
        if shop.exists():  # a demo from before: never write over it
            raise errors.UsageError(
                f"--keep {keep}: {shop} exists already; remove it or choose another folder"
            )
    raise Exit(run_demo(keep, jobs or 4, out()))


# --- entry --------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting."""
    replace_unshowable()
    json_asked = "--json" in (sys.argv[1:] if argv is None else argv)
    try:
        # Without standalone mode typer returns (not raises) the code of an interrupt it
        # caught itself (Ctrl-C outside the engine's own handling): 130, not 0.
        code = app(args=argv, prog_name="plait", standalone_mode=False)
        if isinstance(code, int) and code != 0:
            if code == 130:
                with contextlib.suppress(OSError):  # (a terminal that hung up)
                    err().print("interrupted")
            return code
    except Exit as exc:
        return exc.code
    except errors.Error as exc:
        err().print(clean_text(exc.message))
        if json_asked:
            print_json(error_json(exc))
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        with contextlib.suppress(OSError):  # (a terminal that hung up)
            err().print("interrupted")
        return 130
    except OSError as exc:  # `plait plan --graph mermaid | head -1`: the reader had enough
        if not output_lost(exc):
            raise
        return 0
    except Exception as exc:
        if not show_usage_error(exc, json_asked=json_asked):
            raise
        return 2
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
