"""Every command's help reads as prose in an 80-column terminal: typer (0.29) kept a docstring's line breaks, so
source lines longer than the terminal came out as a wrapped line and a short fragment (``--fit, whose group`` alone
on a line of `abcscale recommend --help`, `predict`'s ```prediction`, a`` on another)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.cli._common import reflowed

COMMANDS = (["recommend"], ["sweep"], ["tune"], ["coord-check"], ["fit"], ["predict"], ["check"], ["serve"],
            ["demo"], ["theory"], ["theory", "table"], ["theory", "convert"], ["mup"], ["mup", "import"],
            ["mup", "export"], [])


def _help(words: list[str]) -> list[str]:
    out = CliRunner().invoke(app, [*words, "--help"], prog_name="abcscale", env={"COLUMNS": "80", "TERM": "dumb"})
    assert out.exit_code == 0, out.output
    return out.output.splitlines()


def _fragments(lines: list[str]) -> list[str]:
    """Lines of prose (the description under Usage, and the command list's descriptions) that end a rendered line
    well short of the width without ending a sentence or a paragraph: a kept source line break."""
    prose: list[str] = []
    below_usage = in_commands = False
    for line in lines:
        if line.lstrip().startswith("Usage:"):
            below_usage = True
            continue
        if line.startswith("╭"):
            below_usage, in_commands = False, line.startswith("╭─ Commands")
        elif line.startswith("╰"):
            in_commands = False
        elif below_usage:
            prose.append(line.strip())
        elif in_commands:  # a row of the command list: its description column
            prose.append(re.sub(r"^│ (?:[a-z-]+)? +", "", line).rstrip(" │"))
    paragraph_ends = (".", ")", ":", "`")
    return [p for i, p in enumerate(prose)
            if p and len(p) < 45 and not p.endswith(paragraph_ends) and i + 1 < len(prose) and prose[i + 1]]


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "abcscale")
def test_help_has_no_line_broken_where_the_source_was(words: list[str]) -> None:
    lines = _help(words)
    assert not _fragments(lines), "\n".join(lines)


def test_recommend_says_its_sentence_in_one_piece() -> None:
    text = " ".join(line.strip() for line in _help(["recommend"]))
    assert "or from a fit with --fit, whose group -p, -o, --lr-mode global, -a and --group select." in text


def test_paragraphs_are_kept_and_a_marked_block_keeps_its_lines() -> None:
    assert reflowed("One\n    two.\n\n    Three\n    four.") == "One two.\n\nThree four."
    assert reflowed("Head.\n\n    \b\n    a  1\n    b  2") == "Head.\n\n\b\na  1\nb  2"
    assert reflowed(None) is None and reflowed("") == ""
