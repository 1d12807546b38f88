"""``abcscale recommend --format torch|optax``: a Python snippet that applies the answer's parameter groups.

The snippet embeds the :class:`~abcscale.schemas.groups.GroupSpec` as JSON and hands it to ``abcscale.torch``
(``init_``, ``param_groups``, ``multipliers``) or ``abcscale.optax`` (``init``, ``transform``), so what runs is
the spec itself, not a transcription. A comment above it spells the same groups out (regex -> role, each
role's numbers) for a team that applies them without abcscale installed.
"""

from __future__ import annotations

from collections.abc import Sequence

from abcscale.schemas.enums import WeightDecayMode, mup_wrapper
from abcscale.schemas.groups import Form, GroupSpec, Role, RoleSetting

#: the torch.optim class for each optimizer family with one (lion and muon: :func:`_optimizer_lines`)
TORCH_OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "adafactor": "Adafactor"}


def snippet(spec: GroupSpec, kind: str, warnings: Sequence[str] = ()) -> str:
    """The ``torch`` or ``optax`` snippet for ``spec`` (``warnings`` become comments at its top)."""
    if kind not in ("torch", "optax"):
        raise ValueError(f"snippet kind must be torch or optax, got {kind!r}")
    if kind == "torch":  # a snippet whose configure() raises (`recommend --format torch` refuses it: exit 2)
        try:
            check_torch_decay(spec)
        except ValueError as exc:
            warnings = [f"this snippet's param_groups raises: {exc}", *warnings]
    head = [f"# abcscale parameter groups: {spec.parameterization} + {spec.optimizer.value}, width "
            f"{spec.base_width} -> {spec.width}, form {spec.form.value} (abcscale recommend --format {kind})",
            *(f"# warning: {w}" for w in dict.fromkeys([*warnings, *spec.warnings]))]
    body = _torch(spec) if kind == "torch" else _optax(spec)
    comments = [comment_text(line) for line in [*head, "#", *fallback(spec, "torch" if kind == "torch" else "jax")]]
    return "\n".join([*comments, *body]) + "\n"


def comment_text(text: str) -> str:
    """``text`` fit for one comment line: each character that is not printable (a newline, a carriage return, a
    NUL, U+2028) written as its escape, as ``repr`` writes it. A rule's pattern (or a warning quoting one) holding
    a newline ended the comment, and the snippet was no Python (a SyntaxError; a review)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def check_torch_decay(spec: GroupSpec) -> None:
    """A ValueError when ``spec``'s decay has no torch.optim form (independent and nonzero): what
    ``abcscale.torch.param_groups`` refuses, and ``recommend --format torch`` before printing a snippet."""
    if spec.weight_decay_mode is WeightDecayMode.independent and any(s.weight_decay for s in spec.roles):
        raise ValueError("weight_decay_mode: torch.optim.AdamW (and SGD's L2 term, Muon, and Lion's ports) decay "
                         "by lr * weight_decay (coupled); an "
                         "independent decay (wd * W whatever the LR and schedule) has no torch.optim form: "
                         "recommend with weight_decay_mode=coupled, or apply the decay yourself")


def spec_literal(spec: GroupSpec) -> str:
    """``GroupSpec.model_validate_json(...)`` on the spec's JSON, as readable as the text allows."""
    text = spec.model_dump_json(indent=2)
    quoted = f'r"""\n{text}\n"""' if '"""' not in text and not text.endswith("\\") else repr(text)
    return f"SPEC = GroupSpec.model_validate_json({quoted})"


def fallback(spec: GroupSpec, layout: str) -> list[str]:
    """The groups as comments: which regex gives which role, and each role's numbers."""
    fan_in = ("in_features (weight.shape[1]; shape[0] for Hugging Face's Conv1D, stored [in, out])" if layout == "torch"
              else "fan-in (kernel.shape[0])")
    lines = ["# Without abcscale: a parameter takes the role of the first regex its name matches (re.search,",
             "# ignoring case, with '/' and '.' both written '.'):",
             *(f"#   {_pattern_text(r.pattern)} -> {r.role.value}" for r in spec.rules),
             "#   where the shape agrees: a rule for embedding, hidden or readout takes matrices only (a 1-D match",
             "#   goes on down the list); a vector or fixed rule takes any shape, a matrix too (at its numbers);",
             "#   the default readout rule skips names under a numbered block (h.0.) and square matrices",
             "#   (but lm_head, unembed, logits); the default hidden rule refuses a top-level fc1/fc2/w1..",
             f"#   with an axis under {spec.width} that does not divide it (an input or output layer: name its role)",
             f"#   no match: 1-D -> vector; a matrix whose axes are multiples of {spec.width} -> hidden",
             "#   the readout's bias (head.bias beside the readout head.weight) and a one-number parameter -> fixed",
             "# and each role's numbers (one optimizer param group per role):",
             *(f"#   {_numbers(s, spec.width, fan_in)}" for s in spec.roles),
             *_DENSE_INPUT[layout]]
    if spec.weight_decay_mode is not None:
        lines.append(f"# weight decay is {spec.weight_decay_mode.value}"
                     + (": the step subtracts lr * weight_decay * W (torch.optim.AdamW, optax.adamw; SGD's L2 term)"
                        if spec.weight_decay_mode.value == "coupled" else
                        ": the step subtracts weight_decay * W (give a coupled AdamW weight_decay / lr)"))
    if spec.form is not Form.multiplier_free:
        lines.append(f"# the {spec.form.value} form keeps forward multipliers: multiply the output of each "
                     "parameter's layer by its role's multiplier")
    if spec.optimizer.value == "muon":
        lines.append("# muon: Muon (its step times sqrt(max(1, fan_out / fan_in))) on the hidden 2-D matrices, "
                     "AdamW with the role's eps on every other parameter")
    if spec.mup is not None:
        m = spec.mup
        lines.append(f"# with microsoft/mup instead: set_base_shapes at base width {m.base_width}, "
                     f"MuReadout(output_mult={m.output_mult:g}), {mup_wrapper(spec.optimizer, long=True)} with each "
                     "role's mup_lr" + (" and eps (each param group's own)" if m.epsilon else "")
                     + ("; mup.init stds at the base width: " + ", ".join(
                         _mup_std(r, std) for r, std in m.init_std.items()) if m.init_std else "")
                     + ("" if m.weight_decay is None else " and weight_decay " + ", ".join(
                         f"{r.value} {wd:.6g}" for r, wd in m.weight_decay.items())))
    return [*lines, ""]


def _mup_std(role: Role, std: float) -> str:
    """A role's mup.init std at the base width: a hidden one is for fan-in = the width, and a hidden matrix of
    fan-in r x width takes it x r^-1/2, as init_ above draws it (the comment gave one hidden std, 2x init_'s for an
    MLP's 4D -> D projection: a review, session 63)."""
    if role is not Role.hidden:
        return f"{role.value} {std:.6g}"
    return (f"{role.value} {std:.6g} x r^-1/2 for a matrix of fan-in r x width ({std * 0.5:.6g} for an MLP's "
            "4D -> D projection; SPEC.mup.init_std[group['name']] per param group)")


def _pattern_text(pattern: str) -> str:
    """A rule's regex as a Python literal to copy: raw (``r"(^|\\.)bias$"``, its backslashes as they are) where one
    can say it, else ``repr``'s (a newline or another unprintable character, a quote, a final backslash)."""
    if pattern.isprintable() and '"' not in pattern and not pattern.endswith("\\"):
        return f'r"{pattern}"'
    return repr(pattern)


#: how a dense input layer and a conv are read, in each framework's own words (the JAX snippet said nn.Linear)
_DENSE_INPUT = {
    "torch": [
        "# an embedding that multiplies a dense input of fan-in d (an nn.Linear on pixels, a conv stem) takes its",
        "#   init std x d^-1/2; a conv's fan-in is in_channels / groups x the kernel's size, a hidden one's too;",
        "#   a depthwise conv (groups = in_channels) is vector-like"],
    "jax": ["# an embedding that multiplies a dense input of fan-in d (a Dense on pixels, a Conv stem) takes its",
            "#   init std x d^-1/2; a Conv's fan-in is its input features / feature_group_count x the kernel's size,",
            "#   a hidden one's too; a depthwise Conv (feature_group_count = input features) is vector-like"]}


def _numbers(s: RoleSetting, width: int, fan_in: str) -> str:
    if s.init_std is None:
        std = "keep init (gains 1, biases 0)"
    elif s.init_exponent and s.role.value == "hidden":
        std = f"init std {s.init_std:.6g} * ({fan_in} / {width})^-{s.init_exponent:g}"
    else:
        std = f"init std {s.init_std:.6g}"
    parts = [std, f"lr {s.lr:.6g}"]
    parts += [f"eps {s.epsilon:.6g}"] if s.epsilon is not None else []
    parts += [f"weight_decay {s.weight_decay:.6g}"] if s.weight_decay is not None else []
    parts += [f"multiplier {s.multiplier:.6g}"] if s.multiplier is not None else []
    parts += [f"mup_lr {s.mup_lr:.6g}"] if s.mup_lr is not None else []
    # Adafactor's floor on rms(W) (optax's min_scale, torch's eps[1]): said where the form moved it off 1e-3
    parts += [f"param-scale floor {s.param_scale_floor:.6g}"] if s.param_scale_floor not in (None, 1e-3) else []
    return f"{s.role.value}: " + ", ".join(parts)


def _form_kw(spec: GroupSpec) -> str:
    """The form said to the export where the spec keeps multipliers: the snippet's own forward applies them (its
    comment says so), so the export's warning that a plain model would not was only noise (a review)."""
    return "" if spec.form is Form.multiplier_free else ", form=SPEC.form"


def _optimizer_lines(spec: GroupSpec) -> tuple[list[str], list[str], str]:
    """The imports, the lines that build ``optimizer`` from the groups, and its type, per optimizer family."""
    groups = f"abcscale.torch.param_groups(model, SPEC{_form_kw(spec)})"
    if spec.optimizer.value == "lion":  # PyTorch has no Lion; lion-pytorch's decays by lr * wd, as the spec's
        return (["from lion_pytorch import Lion  # pip install lion-pytorch (PyTorch has no Lion)"],
                [f"    optimizer = Lion({groups}, betas=(0.9, 0.99))"], "torch.optim.Optimizer")
    if spec.optimizer.value == "muon":  # Muon on the hidden matrices (use_muon groups), AdamW on the rest
        return ([], [f"    groups = {groups}",
                     "    # torch.optim.Muon's default adjust_lr_fn is the spectral shape factor the rule assumes",
                     "    optimizer = [torch.optim.Muon([g for g in groups if g[\"use_muon\"]]),",
                     "                 torch.optim.AdamW([g for g in groups if not g[\"use_muon\"]])]"],
                "list[torch.optim.Optimizer]")
    cls = TORCH_OPTIMIZERS.get(spec.optimizer.value, "Adam")
    top = max((r.lr for r in spec.roles if r.lr), default=None)  # this spec's largest LR: when the cap bites
    when = f" (the largest here, {top:.3g}: {1 / top**2:,.0f} steps)" if top else ""
    cap = (["    # torch.optim.Adafactor caps every group's LR at 1/sqrt(step): the groups train as given only while",
            f"    # their LRs stay under it{when}; optax's adafactor (abcscale.optax) has no cap"]
           if spec.optimizer.value == "adafactor" else [])
    return [], [*cap, f"    optimizer = torch.optim.{cls}({groups})"], "torch.optim.Optimizer"


def _torch(spec: GroupSpec) -> list[str]:
    keeps = spec.form is not Form.multiplier_free
    imports, build, kind = _optimizer_lines(spec)
    ret = f"tuple[{kind}, dict[str, float]]" if keeps else kind
    what = "optimizers (Muon, AdamW)" if spec.optimizer.value == "muon" else "optimizer"
    return ["import torch", *imports, "", "import abcscale.torch", "from abcscale.schemas.groups import GroupSpec",
            "", spec_literal(spec), "", "",
            f"def configure(model: torch.nn.Module) -> {ret}:",
            f'    """Initialise ``model`` by SPEC and return its {what}, one param group per role'
            + (' (and each parameter\'s forward multiplier)."""' if keeps else '."""'),
            f"    abcscale.torch.init_(model, SPEC{_form_kw(spec)})", *build,
            "    return optimizer, abcscale.torch.multipliers(model, SPEC)" if keeps else "    return optimizer"]


def _optax(spec: GroupSpec) -> list[str]:
    keeps = spec.form is not Form.multiplier_free
    kw = _form_kw(spec)
    ret = "tuple[Any, Any, Any, Any]" if keeps else "tuple[Any, Any, Any]"
    return ["from typing import Any", "", "import jax", "", "import abcscale.optax",
            "from abcscale.schemas.groups import GroupSpec", "", spec_literal(spec), "", "",
            f"def configure(params: Any, key: jax.Array) -> {ret}:",
            '    """Re-initialise ``params`` (any JAX parameter tree; kernels [fan_in, fan_out]) by SPEC and return',
            '    them, the optax transformation and its state' + (
                ', and each leaf\'s forward multiplier (a tree like params)."""' if keeps else '."""'),
            *(["    # this form keeps forward multipliers: your apply function multiplies each layer's output by",
               "    # its leaf's multiplier (the fourth value; 1.0 where none)"] if keeps else []),
            f"    params = abcscale.optax.init(SPEC, params, key{kw})",
            f"    tx = abcscale.optax.transform(SPEC, params{kw})",
            "    return params, tx, tx.init(params), abcscale.optax.multiplier_tree(SPEC, params)" if keeps else
            "    return params, tx, tx.init(params)"]


__all__ = ["comment_text", "fallback", "snippet", "spec_literal"]
