"""A user model's runs are keyed by its code: the factory's file and the user's own modules it imports
(``runner.spec.model_source``). Until session 31 only the factory's file counted, so an edit in a helper module
(its layers, its activation) resumed the old model's losses as if nothing had changed."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from abcscale.runner.spec import SweepSpec, model_source, user_imports

USER_MODEL = Path(__file__).resolve().parents[2] / "examples" / "user_model.py"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's project folder on sys.path (as their own checkout is), forgotten again afterwards."""
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in [m for m in sys.modules if m.split(".")[0] in {"helpers", "userpkg", "broken"}]:
        del sys.modules[name]


def _key(ref: str) -> str:
    spec = SweepSpec(model=ref, widths=[16], depth=1, seq_len=8, data="synthetic")
    return spec.cells()[0].base_key(spec, "data")


def test_a_factory_without_helpers_keeps_its_file_hash(tmp_path):
    """Libraries (jax, numpy) and abcscale are not the user's code: such a factory's key is what it was before
    helpers counted, so its finished runs are still found."""
    model = tmp_path / "um.py"
    model.write_text(USER_MODEL.read_text())
    assert user_imports(model) == {}
    assert model_source(f"{model}:factory") == hashlib.sha256(model.read_bytes()).hexdigest()[:16]


def test_editing_a_helper_module_is_another_model(project):
    (project / "helpers.py").write_text("import numpy as np\n\ndef act(x):\n    return x\n")
    (project / "unrelated.py").write_text("X = 1\n")
    model = project / "um.py"
    model.write_text("import jax.numpy as jnp\nfrom helpers import act\n" + USER_MODEL.read_text())
    ref = f"{model}:factory"
    assert set(user_imports(model)) == {"helpers"}
    before, key = model_source(ref), _key(ref)
    (project / "helpers.py").write_text("import numpy as np\n\ndef act(x):\n    return 2 * x\n")
    assert model_source(ref) != before and _key(ref) != key
    (project / "unrelated.py").write_text("X = 2\n")  # not imported: not the model
    (project / "helpers.py").write_text("import numpy as np\n\ndef act(x):\n    return x\n")
    assert model_source(ref) == before and _key(ref) == key


def test_a_package_model_counts_its_relative_and_transitive_imports(project):
    pkg = project / "userpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "util.py").write_text("SCALE = 1.0\n")
    (pkg / "layers.py").write_text("from userpkg.util import SCALE\n\ndef mlp(x):\n    return SCALE * x\n")
    (pkg / "acts.py").write_text("def gelu(x):\n    return x\n")
    (pkg / "model.py").write_text("from . import acts\nfrom .layers import mlp\n" + USER_MODEL.read_text())
    ref = "userpkg.model:factory"
    assert set(user_imports(pkg / "model.py", "userpkg")) == {"userpkg", "userpkg.acts", "userpkg.layers",
                                                                "userpkg.util"}
    before = model_source(ref)
    (pkg / "util.py").write_text("SCALE = 0.5\n")  # two imports away
    assert model_source(ref) != before


def test_a_helper_that_fails_to_import_is_skipped_not_raised(project):
    broken = project / "broken"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise RuntimeError('not today')\n")
    model = project / "um.py"
    model.write_text("import broken.sub\nimport not_a_module_anywhere\n" + USER_MODEL.read_text())
    # the package's own file is read (its text is the user's code); its submodule cannot be looked up
    assert set(user_imports(model)) == {"broken"}
    assert len(model_source(f"{model}:factory")) == 16
