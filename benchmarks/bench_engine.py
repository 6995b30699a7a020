"""Engine overhead: plait against `make -j` and a minimal asyncio runner, same DAGs.

Every task runs `true`. plait runs as a whole process (`plait run`, start-up
included), with `isolation: none` and durability on (the store's default), so
the figure is what a user pays per task beyond the agents' own time. It runs twice:
in a git repository holding the plan, as users run it (each attempt then needs a
`git status` of the checkout before and after its agent, to see what it changed),
and in a plain folder (no snapshots: the engine alone).

    .venv/bin/python benchmarks/bench_engine.py [--quick] [--only layered] [--jobs 8]
        [--repeat 3]

The machine is usually shared, so each configuration can be run `--repeat` times, the
three runners interleaved round by round, and the median kept; the load average and
the CPU time (user + system, the process and its children) are printed beside the
wall times. Prints a table and writes benchmarks/results/engine.json.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import importlib.util
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRUE = shutil.which("true") or "/bin/true"


def independent(n: int) -> dict[str, list[str]]:
    return {f"t{i}": [] for i in range(n)}


def layered(n: int, width: int = 50, seed: int = 7) -> dict[str, list[str]]:
    rng = random.Random(seed)
    dag: dict[str, list[str]] = {}
    previous: list[str] = []
    for layer in range(n // width):
        current = [f"l{layer}x{i}" for i in range(width)]
        for name in current:
            dag[name] = sorted(rng.sample(previous, rng.randint(2, 3))) if previous else []
        previous = current
    return dag


def chain(n: int) -> dict[str, list[str]]:
    return {f"c{i}": ([f"c{i - 1}"] if i else []) for i in range(n)}


def plan_yaml(dag: dict[str, list[str]]) -> str:
    lines = [
        "version: 1",
        "name: bench",
        "isolation: none",
        "agents:",
        "  t:",
        "    backend: command",
        f"    command: [{json.dumps(TRUE)}]",
        "tasks:",
    ]
    for name, needs in dag.items():
        lines.append(f"  {name}:")
        lines.append("    agent: t")
        lines.append("    prompt: go")
        if needs:
            lines.append(f"    needs: [{', '.join(needs)}]")
    return "\n".join(lines) + "\n"


def makefile(dag: dict[str, list[str]]) -> str:
    out = [".PHONY: all " + " ".join(dag), "all: " + " ".join(dag)]
    for name, needs in dag.items():
        out.append(f"{name}: {' '.join(needs)}\n\t@{TRUE}")
    return "\n".join(out) + "\n"


async def asyncio_runner(dag: dict[str, list[str]], jobs: int) -> None:
    """The smallest correct runner: start what is ready, at most `jobs` at once."""
    remaining = {k: len(v) for k, v in dag.items()}
    dependants: dict[str, list[str]] = {k: [] for k in dag}
    for name, needs in dag.items():
        for need in needs:
            dependants[need].append(name)
    ready = [k for k, n in remaining.items() if n == 0]
    running: set[asyncio.Task[str]] = set()

    async def one(name: str) -> str:
        proc = await asyncio.create_subprocess_exec(TRUE)
        await proc.wait()
        return name

    while ready or running:
        while ready and len(running) < jobs:
            running.add(asyncio.ensure_future(one(ready.pop())))
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for fut in done:
            running.discard(fut)
            for dep in dependants[fut.result()]:
                remaining[dep] -= 1
                if remaining[dep] == 0:
                    ready.append(dep)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (the program and everything it started) of one run."""
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    cpu = _children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(
            f"{argv[:3]} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return took, cpu


def timed_asyncio(dag: dict[str, list[str]], jobs: int) -> tuple[float, float]:
    """Wall and CPU seconds of the minimal runner, in this process."""
    before = os.times()
    started = time.perf_counter()
    asyncio.run(asyncio_runner(dag, jobs))
    took = time.perf_counter() - started
    after = os.times()
    cpu = sum(after[:4]) - sum(before[:4])
    return took, cpu


def compile_plait() -> None:
    """Write plait's bytecode caches, as `pip install` does.

    Without them (PYTHONDONTWRITEBYTECODE, or sources edited since) every `plait run`
    compiles its modules from source first, which is not what a user pays.
    """
    spec = importlib.util.find_spec("plait")
    assert spec is not None and spec.submodule_search_locations
    for folder in spec.submodule_search_locations:
        compileall.compile_dir(folder, quiet=1)


def make_repo(folder: Path) -> None:
    """A repository whose one commit holds the plan and the Makefile."""
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    for argv in (["init", "-q"], ["add", "-A"], [*ident, "commit", "-q", "-m", "plan"]):
        subprocess.run(["git", *argv], cwd=folder, check=True)


def load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller DAGs, for a smoke run")
    parser.add_argument("--only", help="run only the DAGs whose name starts with this")
    parser.add_argument("--jobs", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median is kept")
    parser.add_argument(
        "--tmp",
        type=Path,
        help="make the runs' folders (plan, Makefile, PLAIT_HOME) here, e.g. /dev/shm to"
        " take the file system out of the figures (default: the system's temp dir)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "engine.json")
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0
    dags = {
        f"independent-{int(1000 * scale)}": independent(int(1000 * scale)),
        f"layered-{int(2000 * scale)}": layered(int(2000 * scale)),
        f"chain-{int(500 * scale)}": chain(int(500 * scale)),
    }
    if args.only:
        dags = {name: dag for name, dag in dags.items() if name.startswith(args.only)}
    plait = [sys.executable, "-m", "plait", "run", "plait.yaml", "--json"]
    compile_plait()
    rows = []
    for name, dag in dags.items():
        with tempfile.TemporaryDirectory(prefix="plait-bench-", dir=args.tmp) as tmp:
            work = Path(tmp)
            plain = work / "plain"  # no repository: PLAIT_HOME is plait's state
            repo = work / "repo"  # a repository: plait keeps its state in .git/plait
            for folder in (plain, repo):
                folder.mkdir()
                (folder / "plait.yaml").write_text(plan_yaml(dag))
                (folder / "Makefile").write_text(makefile(dag))
            make_repo(repo)
            env = {**os.environ, "PLAIT_HOME": str(work / "state")}
            in_repo = {k: v for k, v in os.environ.items() if k != "PLAIT_HOME"}
            for jobs in args.jobs:
                rounds: dict[str, list[tuple[float, float]]] = {
                    "make": [],
                    "asyncio": [],
                    "plait": [],
                    "plait_plain": [],
                }
                loads = []
                for _ in range(args.repeat):
                    loads.append(load())
                    rounds["make"].append(timed(["make", f"-j{jobs}", "-s", "all"], repo, env))
                    rounds["asyncio"].append(timed_asyncio(dag, jobs))
                    rounds["plait"].append(timed([*plait, "-j", str(jobs)], repo, in_repo))
                    rounds["plait_plain"].append(timed([*plait, "-j", str(jobs)], plain, env))
                n = len(dag)
                wall = {k: statistics.median(w for w, _ in v) for k, v in rounds.items()}
                cpu = {k: statistics.median(c for _, c in v) for k, v in rounds.items()}
                ratios = [p[0] / m[0] for p, m in zip(rounds["plait"], rounds["make"], strict=True)]
                row = {
                    "dag": name,
                    "tasks": n,
                    "jobs": jobs,
                    "rounds": args.repeat,
                    "load": round(statistics.median(loads), 2),
                    "make_us": wall["make"] / n * 1e6,
                    "asyncio_us": wall["asyncio"] / n * 1e6,
                    "plait_us": wall["plait"] / n * 1e6,
                    "plait_s": wall["plait"],
                    "plait_plain_us": wall["plait_plain"] / n * 1e6,
                    "plait_plain_s": wall["plait_plain"],
                    "make_s": wall["make"],
                    "asyncio_s": wall["asyncio"],
                    "make_cpu_s": cpu["make"],
                    "asyncio_cpu_s": cpu["asyncio"],
                    "plait_cpu_s": cpu["plait"],
                    "ratio_to_make": wall["plait"] / wall["make"],
                    "plain_ratio_to_make": wall["plait_plain"] / wall["make"],
                    "ratio_rounds": [round(r, 2) for r in ratios],
                }
                rows.append(row)
                print(
                    f"{name:<18} -j{jobs}  make {row['make_us']:6.0f} µs/task  "
                    f"asyncio {row['asyncio_us']:6.0f}  plait {row['plait_us']:6.0f} "
                    f"(no repository {row['plait_plain_us']:6.0f})  "
                    f"plait/make {row['ratio_to_make']:.2f}x "
                    f"({row['plain_ratio_to_make']:.2f}x)  "
                    f"cpu s make {cpu['make']:.2f} asyncio {cpu['asyncio']:.2f} "
                    f"plait {cpu['plait']:.2f} ({cpu['plait_plain']:.2f})  load {row['load']:.2f}",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
