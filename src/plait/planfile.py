"""The plan file: YAML → validated `plait.model.Plan`, with located, readable errors.

Three layers, each reporting every problem it finds as a located `Problem`:

1. `plait.planyaml.read_yaml` reads YAML safely and keeps every value's location.
2. `plait.planspec` (pydantic) checks shapes and types; its errors are translated
   into plain sentences at the right line.
3. `plait.planrules.check_plan` holds the rules about meaning, on the frozen
   dataclasses, so a plan built in Python is checked by the same code.

All problems are collected and raised together as one PlanError. Nothing here
writes anywhere.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plait.errors import PlanError, Problem
from plait.model import Fixer, Isolation, Plan, ScopePolicy, Task
from plait.planfind import profile_folders
from plait.planrules import check_plan, path_problem
from plait.planvalues import agent_from_spec, describe, parse_duration
from plait.planyaml import MAX_PLAN_BYTES, Located, join, read_yaml

__all__ = [
    "MAX_PLAN_BYTES",
    "check_plan",
    "load_plan",
    "parse_duration",
    "parse_plan",
    "plan_json_schema",
    "read_capped",
    "validate_plan",
]


@dataclass
class _Built:
    plan: Plan
    problems: list[Problem]
    inherited: dict[str, set[str]]  # task id → fields it took from `defaults`


def _build(spec: Any, *, root: Path, path: Path | None, located: Located) -> _Built:
    """The Plan that pydantic's PlanSpec describes."""
    problems: list[Problem] = []
    given = _present(spec.defaults) if spec.defaults else {}
    tasks: dict[str, Task] = {}
    inherited: dict[str, set[str]] = {}
    for tid, tspec in spec.tasks.items():
        own = _present(tspec)
        has_prompt = {"prompt", "prompt_file"} & own.keys()
        # prompt and prompt_file are one choice: a task that makes it takes neither default
        taken = {f for f in given if f not in own and not (has_prompt and f.startswith("prompt"))}
        own.update({f: given[f] for f in taken})
        if "env" in given and "env" not in taken:
            # As GitHub Actions merges env across levels: a task's own variables add to
            # (and override) the defaults', they do not drop them all. Those it takes
            # are the defaults' (a problem with one is reported there, once).
            taken |= {join("env", k) for k in given["env"] if k not in own["env"]}
            own["env"] = {**given["env"], **own["env"]}
        inherited[tid] = taken
        prompt = own.get("prompt")
        if "prompt_file" in own:
            where = "defaults" if "prompt_file" in taken else join("tasks", tid)
            fpath = join(where, "prompt_file")
            if prompt is not None:
                message = "give either `prompt` or `prompt_file`, not both"
                problems.append(Problem(fpath, message, *located.where(fpath)))
            else:
                prompt = _read_prompt(own["prompt_file"], root, fpath, located, problems)
        task_line = located.top_key(join("tasks", tid))
        tasks[tid] = Task(
            id=tid,
            prompt=prompt or "",
            agent=own.get("agent", ""),
            needs=tuple(own.get("needs", ())),
            writes=tuple(own.get("writes", ())),
            reads=tuple(own.get("reads", ())),
            verify=tuple(own["verify"]) if "verify" in own else None,
            timeout_s=own.get("timeout"),
            retries=own.get("retries", 0),
            estimate_s=own.get("estimate"),
            env=dict(own.get("env", {})),
            output_file=own.get("output"),
            continue_on_error=own.get("continue_on_error", False),
            prompt_file=own.get("prompt_file"),
            line=task_line[0] if task_line else None,
        )
    fixer = spec.on_verify_failure
    plan = Plan(
        tasks=tasks,
        name=spec.name or (path.stem if path else "plan"),
        version=spec.version,
        base=spec.base,
        jobs=spec.jobs if spec.jobs is not None else Plan.jobs,
        setup=tuple(tuple(c) for c in spec.setup or ()),
        copy=tuple(spec.copy_ or ()),
        verify=tuple(spec.verify) if spec.verify is not None else None,
        # `defaults:` apply to what the plan runs besides its tasks too: the verify's
        # time limit, and the fixer (a task like any other) takes them as a task would.
        verify_timeout_s=given.get("timeout"),
        verify_each_merge=bool(spec.verify_each_merge),
        on_verify_failure=(
            Fixer(
                agent=fixer.agent or given.get("agent") or "",
                prompt=fixer.prompt,
                timeout_s=given.get("timeout"),
                retries=given.get("retries", 0),
                env=dict(given.get("env", {})),
            )
            if fixer
            else None
        ),
        max_conflict_reruns=(
            spec.max_conflict_reruns
            if spec.max_conflict_reruns is not None
            else Plan.max_conflict_reruns
        ),
        scope=ScopePolicy(spec.scope or "enforce"),
        isolation=Isolation(spec.isolation) if spec.isolation else None,
        budget_usd=spec.budget_usd,
        agents={n: agent_from_spec(n, a) for n, a in (spec.agents or {}).items()},
        path=path,
        root=root,
    )
    return _Built(plan, problems, inherited)


def _present(spec: Any) -> dict[str, Any]:
    """The fields a model was given a value (not null)."""
    return {f: v for f in spec.model_fields_set if (v := getattr(spec, f)) is not None}


def _read_prompt(
    name: str, root: Path, fpath: str, located: Located, problems: list[Problem]
) -> str | None:
    message = _prompt_file_problem(name, root)
    if message is None:
        try:
            return _read_capped(root / name, name)
        except UnicodeDecodeError:
            message = f"prompt file '{name}' is not UTF-8 text"
        except FileNotFoundError:
            message = f"prompt file '{name}' not found (paths are relative to {root})"
        except OSError as exc:
            message = f"cannot read prompt file '{name}': {exc.strerror}"
        except ValueError as exc:
            message = str(exc)
    problems.append(Problem(fpath, message, *located.where(fpath)))
    return None


def _prompt_file_problem(name: str, root: Path) -> str | None:
    """Why `name` is not a file path inside the repository (as written, and once links
    are followed), or None: a plan's prompt is no way to read the rest of the disk."""
    problem = path_problem(name)
    if problem == "is empty":
        return "is empty; name a file in the repository"
    if problem is not None:
        return f"prompt files are read from the repository: {problem}"
    base = root.resolve()
    target = (base / name).resolve()
    if target != base and base not in target.parents:
        return f"prompt file '{name}' leads outside the repository (to {target})"
    return None


def _read_capped(file: Path, name: str) -> str:
    """A prompt file's text: a regular file of at most the cap."""
    try:
        data = read_capped(file, MAX_PLAN_BYTES, regular_only=True)
    except ValueError:
        raise ValueError(f"prompt file '{name}' is not a regular file") from None
    if len(data) > MAX_PLAN_BYTES:
        raise ValueError(f"'{name}' is larger than {MAX_PLAN_BYTES:,} bytes")
    return data.decode("utf-8")


def read_capped(file: Path, limit: int, *, regular_only: bool = False) -> bytes:
    """At most `limit` + 1 bytes of `file`: more than `limit` means it is over the cap.

    A device, a pipe or a file that grows reports a size of its own, or none, so its
    stat size proves nothing: only a bounded read keeps `/dev/zero` out of memory.
    With `regular_only`, anything but a regular file raises ValueError, unread.
    """
    # O_NONBLOCK: opening a FIFO must not wait for a writer; regular files ignore it.
    fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            if regular_only:
                raise ValueError("not a regular file")
            # Blocking again, so a pipe whose writer is still starting (`<(cat plan)`)
            # is read to its end; with no writer at all a read ends at once, empty.
            os.set_blocking(fd, True)
        chunks, left = [], limit + 1
        while left > 0 and (chunk := os.read(fd, left)):
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


# ---------------------------------------------------------------- public API


def _profile_names(root: Path | None) -> dict[str, Path]:
    # The plan's folder and the repository's top level: `plait init` writes profiles
    # at the top, and a plan kept in a subfolder (plans/sub.yaml) uses them too.
    if root is None or not any(d.is_dir() for d in profile_folders(root)):
        return {}
    # Imported here: profiles.py builds on this module's YAML reader and models.
    from plait.profiles import profile_names

    return profile_names(root)


def _profile_problems(plan: Plan, profiles: dict[str, Path]) -> list[Problem]:
    """What is wrong in the profile files the plan's agents come from, each reported
    at the first field that names the agent, with the profile's own file and line."""
    users: dict[str, str] = {}
    if plan.on_verify_failure is not None:
        users[plan.on_verify_failure.agent] = "on_verify_failure.agent"
    for tid, task in plan.tasks.items():
        users.setdefault(task.agent, join(join("tasks", tid), "agent"))
    used = {name: path for name, path in users.items() if name in profiles}
    used = {name: path for name, path in used.items() if name not in plan.agents}
    if not used:
        return []
    from plait.profiles import load_profile

    problems: list[Problem] = []
    for name, path in used.items():
        file = profiles[name]
        try:
            load_profile(file)
        except PlanError as exc:
            shown = _shown(file, plan.root)
            for inner in exc.problems:
                where = shown + (f":{inner.line}" if inner.line else "")
                field = f" {inner.path}:" if inner.path else ""
                message = (
                    f"agent '{name}' comes from {where}, which is invalid:{field} {inner.message}"
                )
                problems.append(Problem(path, message))
    return problems


def _shown(file: Path, root: Path | None) -> str:
    """A profile's path as the user knows it: relative to the plan's folder (with
    `..` for one at the repository's top level)."""
    if root is None:
        return str(file)
    try:
        return Path(os.path.relpath(file, root)).as_posix()
    except ValueError:
        return str(file)


def _within(path: str, outer: str) -> bool:
    return path == outer or path.startswith((outer + ".", outer + "["))


def _from_defaults(path: str, inherited: dict[str, set[str]]) -> str:
    """A problem in a value a task took from `defaults:` is reported once, at `defaults`."""
    for tid, fields in inherited.items():
        for name in fields:
            prefix = join(join("tasks", tid), name)
            if _within(path, prefix):
                return "defaults." + name + path[len(prefix) :]
    return path


def _finish(problems: list[Problem], file: str | None) -> None:
    unique = list(dict.fromkeys(problems))
    if unique:
        unique.sort(key=lambda p: (p.line or 0, p.column or 0))
        raise PlanError(unique, file)


def _parse(text: str, *, file: str | None, root: Path, path: Path | None) -> Plan:
    located = read_yaml(text, file=file)
    data = located.data
    if not isinstance(data, dict):
        holds = "nothing" if data is None else describe(data)
        message = f"a plan is a YAML mapping with `tasks:` at the top; this file holds {holds}"
        raise PlanError([Problem("", message, 1, 1)], file)
    from plait.planspec import judge  # pydantic, imported only when a plan is read

    spec, problems = judge(data, located)
    if spec is None:
        raise PlanError(problems, file)  # still malformed after pruning: shapes only
    built = _build(spec, root=root, path=path, located=located)
    problems += built.problems
    reported = [p.path for p in problems]
    profiles = _profile_names(root)
    found = check_plan(built.plan, profiles) + _profile_problems(built.plan, profiles)
    for problem in found:
        where = _from_defaults(problem.path, built.inherited)
        if not any(_within(where, outer) for outer in reported):
            problems.append(Problem(where, problem.message, *located.where(where)))
    _finish(problems, file)
    return built.plan


def parse_plan(text: str, *, file: str | None = None, root: Path) -> Plan:
    """Validate plan text. `root` is where prompt files are found, and agent profiles
    (there, and at the top level of the git repository `root` is in).

    Raises PlanError holding every problem found, each located in `file`.
    """
    return _parse(text, file=file, root=Path(root), path=None)


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file; Plan.path is the file and Plan.root its directory."""
    file, shown = Path(path), str(path)
    try:
        raw = read_capped(file, MAX_PLAN_BYTES)
    except FileNotFoundError:
        raise PlanError([Problem("", "no such plan file")], shown) from None
    except OSError as exc:
        raise PlanError([Problem("", f"cannot read the plan: {exc.strerror}")], shown) from None
    if len(raw) > MAX_PLAN_BYTES:
        size = _size(file)
        # A pipe or a device has no size to tell: all that is known is that it is too much.
        held = f"is {size:,} bytes" if size > MAX_PLAN_BYTES else "is larger than a plan may be"
        message = f"{held}; plan files are capped at {MAX_PLAN_BYTES:,} bytes"
        raise PlanError([Problem("", message, 1, 1)], shown)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise PlanError([Problem("", "is not UTF-8 text", line)], shown) from None
    resolved = file.resolve()
    return _parse(text, file=shown, root=resolved.parent, path=resolved)


def _size(file: Path) -> int:
    """The file's stat size, 0 when it has none to tell (a pipe, a device)."""
    try:
        return file.stat().st_size
    except OSError:
        return 0


def validate_plan(plan: Plan) -> Plan:
    """Check a plan built in Python with the same rules as a plan file; return it.

    Problems about a task are placed at the task's line when it has one.
    """
    from plait.plantypes import type_problems

    problems = []
    profiles = _profile_names(plan.root)
    found = type_problems(plan)
    if not found:  # (the rules below take the shapes for granted)
        found = check_plan(plan, profiles) + _profile_problems(plan, profiles)
    for problem in found:
        line = None
        for tid, task in plan.tasks.items():
            if _within(problem.path, join("tasks", tid)):
                line = task.line
        problems.append(Problem(problem.path, problem.message, line))
    _finish(problems, str(plan.path) if plan.path else None)
    return plan


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a plan file, for editors and `plait schema`."""
    from plait.planspec import PlanSpec

    schema = PlanSpec.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
