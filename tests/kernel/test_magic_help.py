"""``--help`` of the magics, read in a real kernel as a notebook shows it."""

from __future__ import annotations

import pytest

from tests.kernel.conftest import Kernel


@pytest.fixture
def loaded(kernel: Kernel) -> Kernel:
    kernel.execute_ok("%load_ext bgtasks_ext")
    return kernel


@pytest.mark.parametrize("cell", ["%bgtask --help", "%%bgtask --help\nx = 1", "%bgtask -h"])
def test_bgtask_help_shows_both_forms(loaded: Kernel, cell: str) -> None:
    # When the help of %bgtask / %%bgtask is asked for
    text = loaded.execute_ok(cell).text
    # Then it starts with how to write both forms, the expression where it goes
    lines = text.strip().splitlines()
    assert lines[:3] == ["Usage:", "  %%bgtask [NAME] [options]", "  %bgtask [options] EXPR"], text
    assert "::" not in text and "[name ...]" not in text
    # And the options are explained, the name under its own placeholder
    assert "  NAME " in text and "--executor" in text and "--no-widget" in text


def test_bgtasks_help_shows_both_forms(loaded: Kernel) -> None:
    # When the help of %bgtasks is asked for
    text = loaded.execute_ok("%bgtasks --help").text
    # Then it says how to list tasks and how to attach one
    lines = text.strip().splitlines()
    assert lines[:3] == ["Usage:", "  %bgtasks [--all]", "  %bgtasks attach ID"], text
    assert "::" not in text and "{attach}" not in text


def test_the_question_mark_shows_the_same_help(loaded: Kernel) -> None:
    # When IPython's own help is asked for
    reply = loaded.client.inspect("%bgtask", 7, detail_level=0, reply=True, timeout=30)
    text = reply["content"]["data"]["text/plain"]
    # Then it is the same text, not an RST block
    assert "%bgtask [options] EXPR" in text and "::" not in text
