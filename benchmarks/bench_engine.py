"""Engine overhead: plait against `make -j` and a minimal asyncio runner, same DAGs.

Every task runs `true`. plait runs as a whole process (`plait run`, start-up
included), with `isolation: none` and durability on (the store's default), so
the figure is what a user pays per task beyond the agents' own time.

    .venv/bin/python benchmarks/bench_engine.py [--quick]

Prints a table and writes benchmarks/results/engine.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
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


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(
            f"{argv[:3]} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller DAGs, for a smoke run")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "engine.json")
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0
    dags = {
        f"independent-{int(1000 * scale)}": independent(int(1000 * scale)),
        f"layered-{int(2000 * scale)}": layered(int(2000 * scale)),
        f"chain-{int(500 * scale)}": chain(int(500 * scale)),
    }
    plait = [sys.executable, "-m", "plait", "run", "plait.yaml", "--json"]
    rows = []
    for name, dag in dags.items():
        with tempfile.TemporaryDirectory(prefix="plait-bench-") as tmp:
            work = Path(tmp)
            (work / "plait.yaml").write_text(plan_yaml(dag))
            (work / "Makefile").write_text(makefile(dag))
            env = {**os.environ, "PLAIT_HOME": str(work / "state")}
            for jobs in (2, 8):
                make_s = timed(["make", f"-j{jobs}", "-s", "all"], work, env)
                started = time.perf_counter()
                asyncio.run(asyncio_runner(dag, jobs))
                asyncio_s = time.perf_counter() - started
                plait_s = timed([*plait, "-j", str(jobs)], work, env)
                n = len(dag)
                row = {
                    "dag": name,
                    "tasks": n,
                    "jobs": jobs,
                    "make_us": make_s / n * 1e6,
                    "asyncio_us": asyncio_s / n * 1e6,
                    "plait_us": plait_s / n * 1e6,
                    "plait_s": plait_s,
                    "make_s": make_s,
                    "asyncio_s": asyncio_s,
                    "ratio_to_make": plait_s / make_s,
                }
                rows.append(row)
                print(
                    f"{name:<18} -j{jobs}  make {row['make_us']:7.0f} µs/task  "
                    f"asyncio {row['asyncio_us']:7.0f}  plait {row['plait_us']:7.0f}  "
                    f"plait/make {row['ratio_to_make']:.2f}x",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
