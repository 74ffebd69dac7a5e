"""The `compose` command: global options, lazy sub-commands, and the one error boundary."""

from __future__ import annotations

import importlib
import signal
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from composer.errors import (
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_TERMINATED,
    EXIT_USAGE,
    ComposeError,
    TerminateSignal,
)

if TYPE_CHECKING:
    from composer.project import Project

# Sub-commands load their module only when called, so `compose build` never imports the mailer.
_COMMANDS = {
    "validate": "composer.cli.compose_cmds:validate",
    "build": "composer.cli.compose_cmds:build",
    "check": "composer.cli.preview_cmd:check",
    "schema": "composer.cli.compose_cmds:schema",
    "preview": "composer.cli.preview_cmd:preview",
    "subscribers": "composer.cli.subscribers_cmd:subscribers",
    "send": "composer.cli.delivery_cmd:send",
    "status": "composer.cli.delivery_cmd:status",
    "serve": "composer.cli.serve_cmd:serve",
    "suppressions": "composer.cli.suppressions_cmd:suppressions",
    "init": "composer.cli.init_cmd:init",
    "doctor": "composer.cli.doctor_cmd:doctor",
    "bounces": "composer.cli.events_cmd:bounces",
    "report": "composer.cli.events_cmd:report",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = _COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return None  # not built yet
        return getattr(module, attr)


@dataclass
class App:
    """What every command shares: where the project is, loaded on first use."""

    project_dir: Path | None
    traceback: bool = False
    _project: Project | None = field(default=None, repr=False)

    def project(self, near: Path | None = None) -> Project:
        """The project, loaded (and its newsletter.yaml validated) on first use.

        Without --project it is the nearest one upward from the working folder, else upward
        from `near`, the file the command was given.
        """
        if self._project is None:
            from composer.project import load_project

            self._project = load_project(self.project_dir, near=near)
        return self._project

    def root(self, near: Path | None = None) -> Path:
        """The project folder, found as project() finds it, without validating newsletter.yaml."""
        if self.project_dir is not None:
            return self.project_dir.resolve()
        from composer.project import find_root

        return find_root(near=near)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Newsletter project folder (default: nearest folder upward with newsletter.yaml).",
)
@click.option(
    "--traceback", is_flag=True, help="Show a Python traceback on errors (for bug reports)."
)
@click.version_option(package_name="composer")
@click.pass_context
def cli(ctx: click.Context, project_dir: Path | None, traceback: bool) -> None:
    """Compose newsletter issues from YAML and send them to subscriber lists."""
    ctx.obj = App(project_dir, traceback)


def _terminate(signum: int, frame: object) -> None:
    raise TerminateSignal


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the command, turn every known failure into one line and an exit code.

    `--traceback` adds the traceback to stderr; the exit code stays the same.
    """
    args = sys.argv[1:] if argv is None else argv
    show_traceback = "--traceback" in args
    in_main_thread = threading.current_thread() is threading.main_thread()
    saved = (
        {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM)} if in_main_thread else {}
    )
    # SIGTERM (systemd, kill) unwinds like Ctrl-C and exits 143; a send handles it itself.
    if in_main_thread:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        code = _run(args, show_traceback)
    finally:
        # Called with arguments (tests, scripts), this process goes on: give its handlers back.
        # As the console entry point it is about to exit: a late signal must not kill it.
        if argv is not None:
            for number, handler in saved.items():
                if handler is not None:
                    signal.signal(number, handler)
    sys.exit(code)


def _run(args: list[str], show_traceback: bool) -> int:
    def trace() -> None:
        if show_traceback:
            traceback.print_exc()

    try:
        code = cli.main(args=args, prog_name="compose", standalone_mode=False)
    except ComposeError as exc:
        trace()
        if exc.exit_code in (EXIT_INTERRUPTED, EXIT_TERMINATED):
            _quiet_signals()
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        return exc.exit_code
    except click.exceptions.Abort as exc:
        trace()
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            return _interrupted()
        click.echo("aborted", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        trace()
        return _interrupted()
    except TerminateSignal:
        trace()
        _quiet_signals()
        click.echo("terminated", err=True)
        return EXIT_TERMINATED
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: say so in one line; --traceback shows the details
        trace()
        click.echo(f"internal error: {type(exc).__name__}: {exc} (run with --traceback)", err=True)
        return EXIT_INVALID
    return code if isinstance(code, int) else 0


def _interrupted() -> int:
    _quiet_signals()
    click.echo("interrupted", err=True)
    return EXIT_INTERRUPTED


def _quiet_signals() -> None:
    """Already on the way out: a further Ctrl-C or SIGTERM must not kill us mid-exit."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
