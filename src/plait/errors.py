"""plait's exception tree.

A task's failure is data (an outcome), never an exception. Exceptions mean plait
itself cannot go on, and each one carries the exit code the CLI should use and a
message written for the person at the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass


class Error(Exception):
    """Base of every error plait raises on purpose."""

    exit_code: int = 1

    @property
    def message(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a plan, located as precisely as the YAML allows."""

    path: str  # field path, e.g. "tasks.api.needs[0]"; "" for the document itself
    message: str  # what is wrong and what would be right
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    def render(self, file: str | None) -> str:
        where = file or "<plan>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


class PlanError(Error):
    """The plan is invalid. Holds every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem], file: str | None = None) -> None:
        self.problems = problems
        self.file = file
        super().__init__(self.message)

    @property
    def message(self) -> str:
        lines = [p.render(self.file) for p in self.problems]
        count = len(self.problems)
        head = f"invalid plan ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([head, *(f"  {line}" for line in lines)])


class UsageError(Error):
    """The command line asks for something that cannot be done (exit 2)."""

    exit_code = 2


class EnvironmentProblem(Error):
    """The environment is wrong: not a repository, a program missing (exit 3)."""

    exit_code = 3


#: What every command says when it needs git and there is none.
GIT_MISSING = "git is not installed, or not on PATH: plait needs it"


class NotARepository(EnvironmentProblem):
    pass


class LockedError(EnvironmentProblem):
    """Another live plait process holds the repository's run lock."""

    def __init__(self, pid: int, run_id: str | None, host: str | None = None) -> None:
        self.pid = pid
        self.run_id = run_id
        self.host = host
        holder = f"process {pid}" + (f" on {host}" if host else "")
        run = f" (run {run_id})" if run_id else ""
        super().__init__(
            f"another plait run holds this repository's lock: {holder}{run}. "
            "Wait for it to finish, or stop it and run `plait resume`."
        )


class BackendMissing(EnvironmentProblem):
    """An agent's program is not installed, or is too old."""


class GitError(Error):
    """A git command failed in a way plait cannot treat as a task outcome."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"git {' '.join(argv)} failed ({returncode}): {stderr.strip()}")


class RunNotFound(UsageError):
    pass


class ApplyRefused(Error):
    """`plait apply` cannot merge without touching something of the user's; nothing was changed."""

    exit_code = 1
