"""``abcscale.cli._common.validation_message``: a pydantic error as one line naming the flag the user typed."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

from abcscale.cli._common import validation_message


class Inner(BaseModel):
    embedding: float = Field(1.0, gt=0)
    hidden: float = Field(1.0, gt=0)


class Request(BaseModel):
    widths: list[int] = [8]
    base: Inner = Inner()
    learning_rate: float = Field(1.0, gt=0)


def _error(**data) -> ValidationError:
    with pytest.raises(ValidationError) as exc:
        Request.model_validate(data)
    return exc.value


def test_the_field_maps_to_its_flag_and_the_index_follows():
    assert validation_message(_error(widths=[8, "x"]), {}).startswith("--widths[1]: ")
    assert validation_message(_error(learning_rate=-1), {"learning_rate": "--lr"}).startswith("--lr: ")


def test_the_longest_mapped_prefix_wins_and_the_keys_left_follow_in_parentheses():
    msg = validation_message(_error(base={"embedding": -1, "hidden": -2}), {"base": "--init-scale"})
    assert msg == "--init-scale (embedding, hidden): Input should be greater than 0"
    msg = validation_message(_error(base={"hidden": -1}), {"base": "--init-scale", "base.hidden": "--h"})
    assert msg.startswith("--h: ")


def test_one_flag_owns_every_error_and_without_flags_the_location_is_dotted():
    exc = _error(base={"hidden": -1}, widths=["y"])
    assert validation_message(exc, flag="--spec").split("; ") == [
        "--spec (widths[0]): Input should be a valid integer, unable to parse string as an integer",
        "--spec (base.hidden): Input should be greater than 0"]
    assert validation_message(exc).startswith("widths.0: ")


def test_styled_warnings_restyle_their_category_only(capsys):
    import warnings

    from abcscale.cli._common import styled_warnings

    class Mine(UserWarning):
        pass

    before = warnings.showwarning
    with styled_warnings(Mine):
        warnings.warn("the folder  was\nrepaired", Mine, stacklevel=1)
        with pytest.warns(DeprecationWarning, match="old"):  # others keep Python's handling
            warnings.warn("old", DeprecationWarning, stacklevel=1)
    assert warnings.showwarning is before
    assert capsys.readouterr().err == "warning: the folder was repaired\n"
