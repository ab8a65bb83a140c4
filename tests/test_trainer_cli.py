"""`ser-train --help` for every subcommand: each option says what it is, and the help ends with an
example a user can adapt."""

import argparse

import pytest

from trainer.cli import build_parser


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_option_has_a_help_line_and_the_help_ends_with_an_example(name):
    sub = _subcommands()[name]
    silent = [a.dest for a in sub._actions if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert silent == [], f"ser-train {name}: options without help: {silent}"
    text = sub.format_help().rstrip()
    example = text.rsplit("example:", 1)[-1].strip()
    assert "example:" in text and example.startswith(f"ser-train {name} ")


def test_an_unknown_encoder_table_recipe_is_one_line_before_any_data_is_read(tmp_path, capsys):
    from trainer.cli import main

    out = tmp_path / "never"
    assert main(["encoder-table", "--recipes", "weighted", "nope", "--out", str(out),
                 "--results", str(out / "e.json"), "--readme", str(out / "r.md")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'nope'" in err and "'four-way'" in err and not out.exists()
