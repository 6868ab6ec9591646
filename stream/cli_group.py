"""The command group: a usage mistake is one ``error:`` line (with where to find help) and exit 2,
instead of click's usage block."""
from __future__ import annotations

import sys

import click
from click.exceptions import NoArgsIsHelpError


class OneLineUsageErrors(click.Group):
    """A click group whose usage errors (unknown option, bad value, missing argument) print
    ``error: MESSAGE; see densestream CMD --help`` and exit with status 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as error:  # no command given: the help, as click shows it
            error.show()
            sys.exit(error.exit_code)
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else (prog_name or "densestream")
            click.echo(f"error: {error.format_message().rstrip('.')}; see {where} --help", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)
