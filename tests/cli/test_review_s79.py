"""Session 79: what the CLI's lines say of one."""

from __future__ import annotations

import pytest

from abcscale.cli.tune import print_tuned
from tests.helpers import tune_file


@pytest.mark.parametrize(("run", "said"), [(1, "1 trial in"), (2, "2 trials in"), (0, "0 trials in")])
def test_one_trial_is_one_trial(tmp_path, capsys, run, said):
    tuned, _ = tune_file(tmp_path)
    print_tuned(tuned.model_copy(update={"trials_run": run}), tmp_path / "t.json")
    assert said in " ".join(capsys.readouterr().out.split())
