"""Walking a command's argparse tree, to check that every command and option explains itself."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator


def commands(
    parser: argparse.ArgumentParser, path: str
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """The parser and every sub-command below it, each with its command line."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield from commands(command, f"{path} {name}")


def untaught(path: str, parser: argparse.ArgumentParser) -> list[str]:
    """What ``path --help`` leaves unexplained: actions and options without a help text, and
    options whose default the help does not state."""
    missing: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        if isinstance(action, argparse._SubParsersAction):
            described = {choice.dest for choice in action._choices_actions if choice.help}
            missing += [f"{path} {c}: no help" for c in action.choices if c not in described]
            continue
        if not action.help:
            missing.append(f"{path} {name}: no help")
            continue
        shows_default = action.default in (None, False, []) or "default" in action.help
        if not shows_default:
            missing.append(f"{path} {name}: default {action.default!r} not shown")
    return missing


def unexplained_choices(path: str, parser: argparse.ArgumentParser) -> list[str]:
    """The choices of ``path``'s options and arguments that ``path --help`` names without
    saying what they mean: a choice is explained by the option's own help text, or by an entry
    of the help's lists (a line that starts with the choice, then its meaning)."""
    shown = parser.format_help()
    missing: list[str] = []
    for action in parser._actions:
        if action.choices is None or isinstance(action, argparse._SubParsersAction):
            continue
        for choice in action.choices:
            name = re.escape(str(choice))
            in_help = re.search(rf"\b{name}\b", action.help or "")
            listed = re.search(rf"^ +{name} {{2,}}\S", shown, re.MULTILINE)
            if not (in_help or listed):
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}: {choice}")
    return missing
