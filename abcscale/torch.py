"""The parameter-group spec for a PyTorch model, without importing PyTorch.

Works on anything with ``named_parameters()`` yielding ``(name, tensor)`` (an ``nn.Module``), through the
tensors' own methods, so PyTorch stays the user's dependency, not abcscale's::

    from abcscale import torch as abctorch
    abctorch.init_(model, spec)                                          # init stds of the spec, in place
    opt = torch.optim.AdamW(abctorch.param_groups(model, spec), betas=(0.9, 0.95))
    # muon: torch.optim.Muon on the use_muon groups (hidden matrices), AdamW on the rest
    groups = abctorch.param_groups(model, spec)
    opts = [torch.optim.Muon([g for g in groups if g["use_muon"]]),
            torch.optim.AdamW([g for g in groups if not g["use_muon"]], betas=(0.9, 0.95))]
    abctorch.multipliers(model, spec)      # abc/mup forms: what the forward must multiply, e.g. the readout's

Names are PyTorch's (``transformer.h.0.attn.c_attn.weight``) and ``nn.Linear`` weights are [out, in], so the
fan-in is the last axis. A parameter that no rule names and whose shape does not say is a ValueError naming it;
pass ``rules`` (tried in order, before the spec's) to place it. Use a spec in the ``multiplier_free`` form for a
plain model.

Each function also takes a constants file from ``abcscale tune`` (its path or ``TunedConstants``), or ``abcscale mup
import --json``'s document, in place of the spec, with the target ``width`` (and ``form``, default
``multiplier_free``): the file's groups at that width, as ``abcscale.recommend(constants=FILE, width=...,
form=...).groups``::

    opt = torch.optim.Adam(abctorch.param_groups(model, "tuned.json", width=1024))
"""

from __future__ import annotations

import math
import re
import warnings
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from abcscale.schemas.api import MupImport
from abcscale.schemas.enums import Optimizer
from abcscale.schemas.groups import Form, GroupRule, GroupSpec, Role
from abcscale.schemas.recommend import Recommendation
from abcscale.schemas.tune import TunedConstants
from abcscale.theory.groups import (
    DEFAULT_RULES,
    PARAM_SCALE_FLOOR,
    assign,
    check_width,
    dense_input_std,
    matched_name,
    named_role,
    readout_candidates,
    refusal,
    router_note,
    rule_for,
    settle_fixed,
    several_readouts_note,
    stack_fan_in,
    tied_readout_multiplier,
    unmatched_note,
    unmatched_rules,
)

#: a parameter-group spec, or a constants file (path or model: a tune file, `mup import`'s document, from_mup's
#: answer) to take one from at a given width
SpecLike = GroupSpec | Recommendation | TunedConstants | MupImport | str | Path
#: torch.optim.Adafactor's eps[0] in the groups: its square, 1e-30, floors the second moment as optax's epsilon does
ADAFACTOR_EPS1 = 1e-15

def _spec_keys(optimizer: Optimizer) -> set[str]:
    """The group keys :func:`param_groups` sets from a spec for ``optimizer`` (:func:`_group`); ``extra`` may not
    override them."""
    eps = {"eps"} if optimizer in (Optimizer.adam, Optimizer.adamw, Optimizer.muon, Optimizer.adafactor) else set()
    # SGD's too: one weight_decay for every group keeps no group's lr x wd across widths (the spec's per-group ones do)
    decay = {"weight_decay"} if optimizer in (Optimizer.adamw, Optimizer.lion, Optimizer.muon, Optimizer.sgd) else set()
    return {"params", "lr", "name", *eps, *decay, *({"use_muon"} if optimizer is Optimizer.muon else set())}


def warn_unapplied_multipliers(spec: GroupSpec, form: Form | str | None, where: str, model: Any = None) -> None:
    from abcscale.usecases.tune import warn_unapplied_multipliers as warn

    applied = spec.form is Form.mup and bool(_mu_readouts(model))  # MuReadout applies the mup form's multiplier
    warn(spec, form, f"abctorch.{where}", applied=applied)


def _mu_readouts(model: Any) -> set[str]:
    """The weights of microsoft/mup's ``MuReadout`` (and ``MuSharedReadout``) modules, by class name: their forward
    divides the output by ``width_mult``, as the mup form's readout numbers assume and no other form's do."""
    if not callable(getattr(model, "named_modules", None)):
        return set()
    return {f"{prefix}.weight" if prefix else "weight" for prefix, module in model.named_modules()
            if "MuReadout" in {c.__name__ for c in type(module).__mro__}}


def _check_mu_readout(model: Any, placed: list[tuple[str, Any, Role, float]], spec: GroupSpec, rules: Any) -> None:
    """A ``MuReadout`` placed as the readout with a spec in another form: its 1/width_mult applies on top of the
    readout's numbers, which already hold the width's factor (a user review: logits 4x too small at 4x the base
    width, and the readout's Adam steps as much, with ``multipliers()`` saying nothing was needed). So does a
    ``MuSharedReadout`` tied to the embedding, on top of the tied-logits multiplier the form asks for."""
    if spec.form is Form.mup:
        return
    mu = _mu_readouts(model)
    if hit := next((name for name, _, role, _ in placed if role is Role.readout and name in mu), None):
        raise ValueError(f"parameter {hit!r} is microsoft/mup's MuReadout, whose forward divides its output by "
                         f"width_mult, but the spec is in the {spec.form.value} form, whose readout LR and init std "
                         "assume a plain readout: the width's factor would apply twice. Make the spec in the mup form "
                         "(recommend(..., form='mup'), or `abcscale mup export`), or use nn.Linear as the readout")
    for name, _, other, _ in _tied(model, placed, spec, rules) if mu else []:
        if shared := next((n for n in (other, name) if n in mu), None):
            raise ValueError(f"parameter {shared!r} is microsoft/mup's MuSharedReadout, tied to "
                             f"{name if shared == other else other!r}: its forward divides the tied logits by "
                             f"width_mult, but the spec is in the {spec.form.value} form, whose tied-logits multiplier "
                             "(theory.groups.tied_readout_multiplier, abctorch.multipliers) assumes plain logits "
                             "h @ W.T: the width's factor would apply twice. Make the spec in the mup form, or compute "
                             "the tied logits yourself with that multiplier")


def _spec(spec: SpecLike, width: int | None, form: Form | str | None) -> GroupSpec:
    return _resolved(spec, width, form)[0]


def _resolved(spec: SpecLike, width: int | None, form: Form | str | None
              ) -> tuple[GroupSpec, MupImport | None]:
    """The spec, and the `abcscale mup import --json` document it was read from, if it was (a ``MupImport``): the
    constants files ``recommend --constants`` takes (:func:`abcscale.usecases.mup.export_spec`)."""
    from abcscale.usecases.mup import export_spec

    return export_spec(spec, width=width, form=form)


def _named(model: Any) -> list[tuple[str, Any]]:
    if not callable(getattr(model, "named_parameters", None)):
        raise TypeError(f"model: expected an object with named_parameters() (an nn.Module), got "
                        f"{type(model).__name__}")
    return list(model.named_parameters())


def _in_out(model: Any) -> set[str]:
    """The parameters stored [in, out] rather than nn.Linear's [out, in]: those of Hugging Face's ``Conv1D``
    (GPT-2's c_attn, c_proj, c_fc), read by its class name, so their fan-in (and init std) is the first axis."""
    if not callable(getattr(model, "named_modules", None)):
        return set()
    return {f"{prefix}.{name}" if prefix else name for prefix, module in model.named_modules()
            if type(module).__name__ == "Conv1D" for name, _ in module.named_parameters(recurse=False)}


#: TransformerLens's HookedTransformer stores its matrices [in, out] and uses them as ``x @ W``, attention's per head:
#: W_Q, W_K, W_V [heads, d_model, d_head] (GQA's _W_K, _W_V over the kv heads), W_O [heads, d_head, d_model]; the
#: MLP's W_in, W_gate [d_model, d_mlp] and W_out [d_mlp, d_model]; W_U [d_model, d_vocab]. Read in torch's layout
#: the per-head matrices were "a hidden matrix's shape for width d_head" and refused with an input layer's role
#: offered, and W_in / W_out took d_mlp and d_model as fan-ins, swapped (init 2x off at 4x): session 54. Only in
#: its own modules (by the class's package): the names alone also fit a per-head model of one's own stored [heads,
#: out, in], an autoencoder's W_in [D, 784], a GNN's W_E, a recurrent cell's square W_U (a code review).
_TL_QKV = ("W_Q", "W_K", "W_V", "_W_K", "_W_V")
_TL_MLP = ("W_in", "W_gate", "W_out")


def _tl_modules(model: Any) -> set[str]:
    """The prefixes of TransformerLens's modules in ``model``, by their class's package."""
    if not callable(getattr(model, "named_modules", None)):
        return set()
    return {prefix for prefix, module in model.named_modules()
            if (type(module).__module__ or "").split(".")[0] == "transformer_lens"}


def _transformer_lens(model: Any) -> tuple[dict[str, tuple[int, ...]], list[GroupRule]]:
    """TransformerLens's parameters (those of its modules, :func:`_tl_modules`): each one's shape as torch's ``[out,
    in]`` matrix, which every reading below takes (fan-in, role by shape, the width checks), and exact-name rules for
    their roles: attention's and the MLP's matrices hidden (a GQA key's ``[kv_heads x d_head, d_model]`` is no
    multiple of the width), W_E and W_pos the embedding, W_U the readout and its b_U fixed, the per-head biases
    b_Q, b_K, b_V [heads, d_head] vector-like."""
    if not (tl := _tl_modules(model)):
        return {}, []
    modules: dict[str, dict[str, tuple[int, ...]]] = {}  # each module's own parameters, from their names
    for name, p in _named(model):
        prefix, _, own_name = name.rpartition(".")
        if prefix in tl:
            modules.setdefault(prefix, {})[own_name] = tuple(int(d) for d in p.shape)
    views: dict[str, tuple[int, ...]] = {}
    roles: dict[str, Role] = {}
    for prefix, own in modules.items():
        def full(name: str, prefix: str = prefix) -> str:
            return f"{prefix}.{name}" if prefix else name
        q, o = own.get("W_Q", ()), own.get("W_O", ())
        if len(q) == 3 and len(o) == 3 and q[0] == o[0] and q[1] == o[2] and q[2] == o[1]:
            for name in _TL_QKV:
                if len(dims := own.get(name, ())) == 3:
                    views[full(name)], roles[full(name)] = (dims[0] * dims[2], dims[1]), Role.hidden
            views[full("W_O")], roles[full("W_O")] = (o[2], o[0] * o[1]), Role.hidden
            for name in ("b_Q", "b_K", "b_V", "_b_K", "_b_V"):
                if name in own:
                    roles[full(name)] = Role.vector
        up, down = own.get("W_in", ()), own.get("W_out", ())
        if len(up) == 2 and up == down[::-1] and own.get("W_gate", up) == up:
            for name in _TL_MLP:
                if name in own:
                    views[full(name)], roles[full(name)] = own[name][::-1], Role.hidden
        if len(u := own.get("W_U", ())) == 2:
            views[full("W_U")], roles[full("W_U")] = u[::-1], Role.readout
            if own.get("b_U") == u[1:]:
                roles[full("b_U")] = Role.fixed
        for name in ("W_E", "W_pos"):
            if len(own.get(name, ())) == 2:
                roles[full(name)] = Role.embedding
    return views, [GroupRule(pattern=f"^{re.escape(name)}$", role=role) for name, role in roles.items()]


class _Conv:
    """A convolution's weight read as its channel matrix (by class: ``_ConvNd``). ``nn.Conv*d`` store it
    [out, in / groups, *kernel], ``nn.ConvTranspose*d`` [in, out / groups, *kernel] (read as Conv's, a decoder's
    input layer took a fan-in growing with the width: a user review)."""

    def __init__(self, transposed: bool, groups: int, stride: Any = 1) -> None:
        self.transposed, self.groups = transposed, max(1, groups)
        self.stride = tuple(int(x) for x in stride) if isinstance(stride, tuple | list) else (int(stride or 1),)

    def matrix(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """[out, in] over all groups: what says whether the channels grow with the width."""
        a, b = int(shape[0]), int(shape[1])
        return (b * self.groups, a) if self.transposed else (a, b * self.groups)

    def fan_in(self, shape: tuple[int, ...]) -> int:
        """What one output sums over: a group's input channels times the kernel; a transposed conv's output takes
        ceil(k / stride) taps of each kernel axis (a U-Net's k = 2, s = 2 upsampling: one, not two; a code review)."""
        kernel = [int(d) for d in shape[2:]]
        if self.transposed:
            strides = self.stride * len(kernel) if len(self.stride) == 1 else self.stride
            kernel = [-(-k // max(1, st)) for k, st in zip(kernel, strides, strict=False)]
        return self.matrix(shape)[1] // self.groups * math.prod(kernel)

    def depthwise(self, shape: tuple[int, ...]) -> bool:
        """One input channel per group (``groups == in_channels``): a per-channel filter, vector-like (one
        width-sized axis), as microsoft/mup reads [n, 1, k, k]."""
        return self.groups > 1 and self.matrix(shape)[1] == self.groups


def _convs_of(prefix: str, module: Any) -> _Conv | None:
    """How to read ``module``'s weight if it is a convolution's (by class), else None."""
    classes = {c.__name__ for c in type(module).__mro__}
    if "_ConvNd" not in classes or len(getattr(getattr(module, "weight", None), "shape", ())) < 3:
        return None
    return _Conv("_ConvTransposeNd" in classes, int(getattr(module, "groups", 1) or 1), getattr(module, "stride", 1))


def _convs(model: Any) -> dict[str, _Conv]:
    """The weights of convolutions (``nn.Conv*d``, ``nn.ConvTranspose*d``), by class, with how to read them."""
    if not callable(getattr(model, "named_modules", None)):
        return {}
    return {f"{prefix}.weight" if prefix else "weight": conv for prefix, module in model.named_modules()
            if (conv := _convs_of(prefix, module)) is not None}


def _dense(model: Any) -> set[str]:
    """The parameters of dense and convolutional modules (``nn.Linear``, ``nn.Conv2d``, Hugging Face's ``Conv1D``),
    by class: given the embedding role, an input layer whose init std takes its fan-in^-1/2
    (:func:`theory.groups.dense_input_std`); an ``nn.Embedding`` (or a bare ``nn.Parameter``) is a lookup table."""
    if not callable(getattr(model, "named_modules", None)):
        return set()
    # nn.MultiheadAttention's own projections too (in_proj_weight, a cross-attention's k_proj_weight on a context
    # of kdim features): an input layer on that context, given the embedding role, takes its fan-in^-1/2
    return {f"{prefix}.{name}" if prefix else name for prefix, module in model.named_modules()
            if {c.__name__ for c in type(module).__mro__} & {"Linear", "_ConvNd", "Conv1D", "MultiheadAttention"}
            for name, p in module.named_parameters(recurse=False) if len(p.shape) >= 2}


def _cross_attention(model: Any) -> dict[str, str]:
    """``nn.MultiheadAttention``'s key and value projections on a context of another size than ``embed_dim``
    (``kdim``, ``vdim``: cross-attention onto an image encoder's 768 features), by class, each with what it reads:
    their fan-in is the context's size, not the width (taken as a hidden matrix of fan-in 3x the width at width 256
    and refused at 512 as another width: a review, session 65)."""
    if not callable(getattr(model, "named_modules", None)):
        return {}
    out = {}
    for prefix, module in model.named_modules():
        if "MultiheadAttention" not in {c.__name__ for c in type(module).__mro__}:
            continue
        embed = getattr(module, "embed_dim", None)
        for name, attr in (("k_proj_weight", "kdim"), ("v_proj_weight", "vdim")):
            size = getattr(module, attr, None)
            if getattr(module, name, None) is not None and size is not None and size != embed:
                full = f"{prefix}.{name}" if prefix else name
                out[full] = f"nn.MultiheadAttention's {attr}={size}, embed_dim={embed}"
    return out


def _bilinears(model: Any) -> set[str]:
    """The weights of ``nn.Bilinear`` modules ([out, in1, in2]: one output sums over in1 x in2 products), by class."""
    if not callable(getattr(model, "named_modules", None)):
        return set()
    return {f"{prefix}.weight" if prefix else "weight" for prefix, module in model.named_modules()
            if "Bilinear" in {c.__name__ for c in type(module).__mro__}
            and len(getattr(getattr(module, "weight", None), "shape", ())) == 3}


def _all_rules(model: Any, spec: GroupSpec, rules: Any) -> list[GroupRule]:
    """The rules a model's parameters are placed by: the user's, then what the modules' classes say, then the
    spec's own."""
    from abcscale.usecases.recommend import parse_rules

    # the spec's rules begin with those recommend(rules=...) was given: the user's too, before the classes'
    own = [r for r in spec.rules if r not in DEFAULT_RULES]
    # microsoft/mup's MuReadout is the readout by its class, as an nn.Embedding is the embedding (one of 1024
    # classes at width 256 took a hidden matrix's role by its shape: a review, session 65)
    mu = [GroupRule(pattern=f"^{re.escape(name)}$", role=Role.readout) for name in sorted(_mu_readouts(model))]
    return [*([] if rules is None else parse_rules(rules)), *own, *_lookup_tables(model, spec.width), *mu,
            *_transformer_lens(model)[1],
            *(r for r in spec.rules if r in DEFAULT_RULES)]


def _lookup_tables(model: Any, width: int) -> list[GroupRule]:
    """Exact-name rules from module classes (by name): an ``nn.Embedding``/``nn.EmbeddingBag`` weight is an
    embedding whatever its name (``nn.Sequential``'s ``0.weight``) or shape (a vocabulary that is a multiple of the
    width looked like a hidden matrix and trained as one, unsaid: a user review); an RNN's gate matrices hidden."""
    if not callable(getattr(model, "named_modules", None)):
        return []
    out = []
    for prefix, module in model.named_modules():
        conv = _convs_of(prefix, module)
        if conv is not None and conv.depthwise(shape := tuple(module.weight.shape)):
            # a per-channel filter: vector-like where its channels grow with the width, fixed on fixed ones (an RGB
            # blur [3, 1, k, k])
            full = f"{prefix}.weight" if prefix else "weight"
            role = Role.vector if conv.matrix(shape)[0] % width == 0 else Role.fixed
            out.append(GroupRule(pattern=f"^{re.escape(full)}$", role=role))
    for prefix, module in model.named_modules():
        classes = {c.__name__ for c in type(module).__mro__}
        if not classes & {"Embedding", "EmbeddingBag", "RNNBase"}:
            continue
        for name, p in module.named_parameters(recurse=False):
            full = f"{prefix}.{name}" if prefix else name
            if classes & {"Embedding", "EmbeddingBag"} and name == "weight":
                out.append(GroupRule(pattern=f"^{re.escape(full)}$", role=Role.embedding))
            elif "RNNBase" in classes and name.startswith("weight_") and len(p.shape) == 2 \
                    and all(int(d) % width == 0 for d in p.shape):
                # an LSTM's / GRU's gate matrices [gates x H, H]: hidden (two of one shape read as an embedding and
                # a readout, a user review); an input matrix on a fixed number of features is no hidden one
                out.append(GroupRule(pattern=f"^{re.escape(full)}$", role=Role.hidden))
    return out


def _tied(model: Any, placed: list[tuple[str, Any, Role, float]], spec: GroupSpec, rules: Any
          ) -> list[tuple[str, Role, str, Role]]:
    """Each tensor that is two parameters of different roles, as (placed name, its role, other name, its role).
    PyTorch's ``named_parameters()`` lists a tied tensor once; this asks it for the duplicates."""
    return [pair for pair, _ in _tied_with(model, placed, spec, rules)]


def _tied_with(model: Any, placed: list[tuple[str, Any, Role, float]], spec: GroupSpec, rules: Any
               ) -> list[tuple[tuple[str, Role, str, Role], Any]]:
    try:
        every = list(model.named_parameters(remove_duplicate=False))
    except TypeError:  # an object whose named_parameters() takes no such flag
        return []
    if len(every) == len(placed):
        return []
    first = {id(p): (name, role) for name, p, role, _ in placed}
    out = []
    for name, p in every:
        if id(p) in first and name != first[id(p)][0]:
            try:
                role = assign(name, tuple(p.shape), spec.width, rules, layout="torch")[0]
            except ValueError:  # an alias no rule names (BERT's cls.predictions.decoder.weight): nothing to compare
                continue
            if role is not first[id(p)][1]:
                out.append(((*first[id(p)], name, role), p))
    return out


def _aliases(model: Any, placed: list[tuple[str, Any, Role, float]], spec: GroupSpec, rules: Any
             ) -> list[tuple[str, tuple[int, ...], Role]]:
    """The names a tied tensor has besides the one ``named_parameters()`` lists, with the roles they would take."""
    try:
        every = list(model.named_parameters(remove_duplicate=False))
    except TypeError:  # an object whose named_parameters() takes no such flag
        return []
    listed = {name for name, _, _, _ in placed}
    out = []
    for name, p in every:
        if name not in listed:
            try:
                out.append((name, tuple(p.shape), assign(name, tuple(p.shape), spec.width, rules, layout="torch")[0]))
            except ValueError:  # an alias no rule names: it says nothing
                continue
    return out


def _embedding_first(model: Any, placed: list[tuple[str, Any, Role, float]], spec: GroupSpec, rules: Any
                     ) -> list[tuple[str, Any, Role, float]]:
    """A readout tied to the embedding trains as the embedding whichever the module declares first (PyTorch
    lists the tensor once, under its first name): placed as the readout (``lm_head`` before ``wte``), it took the
    readout's init std, so the embedding's rows started ~1/width, and the tied-logits multiplier, which assumes the
    embedding's init, shrank the logits again. The tensor is placed under its embedding name instead."""
    swap = {id(p): other for (_, role, other, other_role), p in _tied_with(model, placed, spec, rules)
            if role is Role.readout and other_role is Role.embedding}
    if not swap:
        return placed
    return [(swap[id(p)], p, Role.embedding, 1.0) if id(p) in swap else (name, p, role, ratio)
            for name, p, role, ratio in placed]


def _tied_logits(pair: tuple[str, Role, str, Role]) -> str | None:
    """The readout's name of an embedding tied to the readout: where the forward scales the tied logits."""
    name, role, other, other_role = pair
    if {role, other_role} != {Role.embedding, Role.readout}:
        return None
    return name if role is Role.readout else other


def _check_tied(model: Any, placed: list[tuple[str, Any, Role, float]], spec: GroupSpec, rules: Any) -> None:
    """Warn when one tensor is two parameters of different roles (an embedding tied to the readout): it trains
    under its first name's role (as microsoft/mup's ``MuSharedReadout`` trains the shared weight as the
    embedding), so the other role's LR and init std are not applied, and a form that folds the readout's
    multiplier into them (multiplier_free) cannot."""
    for name, role, other, other_role in _tied(model, placed, spec, rules):
        forward = ""
        if _tied_logits((name, role, other, other_role)) is not None:
            forward = (f"; the forward must multiply the tied logits (h @ W.T, W as stored) by "
                       f"{tied_readout_multiplier(spec):.4g} (theory.groups.tied_readout_multiplier: the untied "
                       "readout's forward scale over the embedding's init std; abctorch.multipliers gives it), as "
                       "MuSharedReadout does, or untie them")
        warnings.warn(f"parameters {name!r} and {other!r} are one tensor (tied) with the roles {role.value} and "
                      f"{other_role.value}: it trains as the {role.value} (its LR and init std){forward}",
                      UserWarning, stacklevel=5)


#: the warnings each model was given already (by identity, while the model lives): param_groups, init_ and
#: multipliers read a model alike, so a snippet's configure() said each one three times (a review, session 62)
_told: weakref.WeakKeyDictionary[Any, set[tuple[str, type[Warning]]]] = weakref.WeakKeyDictionary()


def _placed(model: Any, spec: GroupSpec, rules: Any, fan_in: Mapping[str, int] | None = None
            ) -> list[tuple[str, Any, Role, float]]:
    """:func:`_place`, each of its warnings said once per model (at the caller's line, under the caller's filters:
    an "error" filter still raises)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        placed = _place(model, spec, rules, fan_in)
    try:
        told = _told.setdefault(model, set())
    except TypeError:  # an object no weak reference can hold: every call says its warnings
        told = set()
    for w in caught:
        if (key := (str(w.message), w.category)) not in told:
            told.add(key)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return placed


def _place(model: Any, spec: GroupSpec, rules: Any, fan_in: Mapping[str, int] | None = None
           ) -> list[tuple[str, Any, Role, float]]:
    """Each parameter's name, tensor, role and fan-in as a multiple of the width. ``rules`` in any form
    ``recommend(rules=...)`` takes (GroupRules, ``{pattern, role}`` dicts, ``(pattern, role)`` pairs, a
    ``{pattern: role}`` mapping). ``fan_in`` ``{name: n}`` says what one output of a parameter sums over where its
    shape cannot (a stack of experts stored [experts, in, out] and used as ``x @ W[e]``, whose fan-in is not the
    last axis): hidden unless a rule names it, as abcscale.optax's ``fan_in`` (a review, session 53)."""
    from abcscale.usecases.recommend import parse_rules

    # the rules someone wrote (the call's, the spec's own): a grouped conv's role only they can say
    given = [] if rules is None else list(parse_rules(rules))
    written = list(dict.fromkeys([*given, *(r for r in spec.rules if r not in DEFAULT_RULES)]))
    every = [name for name, _ in _named(model)]  # (a TypeError naming what `model` should be)
    try:  # a tied tensor's other names too (lm_head.weight beside wte.weight): a rule may name either
        every = [name for name, _ in model.named_parameters(remove_duplicate=False)]
    except TypeError:  # an object whose named_parameters() takes no such flag
        pass
    # recommend(rules=...)'s too, which the spec carries: only the call's were said (a review)
    if note := unmatched_note(every, written):
        warnings.warn(note, stacklevel=4)
    rules = _all_rules(model, spec, rules)
    stored_in_out, convs, views = _in_out(model), _convs(model), _transformer_lens(model)[0]
    # keyed as rules match: without a wrapper's prefix (torch.compile's `_orig_mod.`, DDP's `module.`) on either side
    fan_in = {matched_name(k): v for k, v in (fan_in or {}).items()}
    if unknown := sorted(set(fan_in) - {matched_name(name) for name, _ in _named(model)}):
        raise ValueError(f"fan_in: {', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} no "
                         f"parameter of the model (named as model.named_parameters() names them: {every[0]!r}, ...)"
                         if every else "fan_in: the model has no parameters")
    for k, v in fan_in.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"fan_in: {k!r}: a positive integer (what one output sums over), got {v!r}")

    def seen(name: str, p: Any) -> tuple[int, ...]:
        # a convolution's weight is read as its channel matrix [out, in]: its kernel axes are no width (they were
        # read as one: "a hidden matrix's shape for width 3", a user review), its groups and a transposed one's
        # layout neither ("width 16" for a conv of 4 groups at width 64, "width 1" for a ConvTranspose2d)
        # TransformerLens's [in, out] and per-head matrices as their [out, in] matrix (_transformer_lens)
        return convs[name].matrix(tuple(p.shape)) if name in convs else views.get(name, tuple(p.shape))

    # a parameter whose given fan-in is its second-last axis, not its last, is stored [..., in, out] and used as
    # x @ W (a bare readout U [D, V], logits = h @ U): read [out, in] by the checks below, as Conv1D's are. Read as
    # stored, its vocabulary was its fan-in and the model "1000 wide", with advice (layout='jax') abctorch has no
    # option for (a review, session 67)
    declared_in_out = {name for name, p in _named(model)
                       if name not in convs and name not in views and _given_in_out(name, p, fan_in)}

    def oriented(name: str, p: Any) -> tuple[int, ...]:
        """:func:`seen`, [..., out, in] for every parameter: Conv1D's and those ``fan_in`` says are [in, out]."""
        view = tuple(int(d) for d in seen(name, p))
        if len(view) >= 2 and (name in stored_in_out or name in declared_in_out):
            return (*view[:-2], view[-1], view[-2])
        return view

    context, bilinear = _cross_attention(model), _bilinears(model)
    placed, refused, inferred = [], [], set()
    for name, p in _named(model):
        if matched_name(name) in fan_in:  # said to be a contracted weight: hidden unless a rule names it
            placed.append((name, p, named_role(name, seen(name, p), rules) or Role.hidden,
                           fan_in[matched_name(name)] / spec.width))
            continue
        if (n := stack_fan_in(name, tuple(p.shape), spec.width)) is not None \
                and named_role(name, tuple(p.shape), rules) in (None, Role.hidden):
            placed.append((name, p, Role.hidden, n / spec.width))  # experts' up/down stack, by name and the width
            inferred.add(name)
            continue
        if name in bilinear and named_role(name, tuple(p.shape), written) not in (Role.vector, Role.fixed):
            # [out, in1, in2]: read as a hidden matrix of fan-in in2, its init std sqrt(in1) too large (outputs 8x
            # at width 64, 16x at 256: a review, session 65); microsoft/mup refuses it too
            refused.append((name, list(p.shape), f"parameter {name!r} {list(p.shape)}: nn.Bilinear's weight [out, "
                            f"in1, in2], whose one output sums over in1 x in2 = {int(p.shape[1]) * int(p.shape[2])} "
                            "products, which no role's shape reads; give its fan-in, fan_in={"
                            f"{name!r}: {int(p.shape[1]) * int(p.shape[2])}}} (hidden unless a rule names it), or a "
                            f"rule ({rule_for(name)}, 'vector') to keep its own init"))
            continue
        if name in context and named_role(name, tuple(p.shape), written) is None:
            size = int(p.shape[-1])
            refused.append((name, list(p.shape), f"parameter {name!r} {list(p.shape)}: a projection of a context of "
                            f"{size} features ({context[name]}), its fan-in the context's size, not the width: an "
                            "input layer if the context's size stays fixed as the width grows (an image encoder's "
                            f"features: the embedding, its init std x fan-in^-1/2), ({rule_for(name)}, 'embedding'); "
                            f"a hidden matrix if it grows with the width, ({rule_for(name)}, 'hidden')"))
            continue
        conv = convs.get(name)
        if conv is not None and conv.groups > 1 and not conv.depthwise(tuple(p.shape)) \
                and named_role(name, seen(name, p), written) is None:
            # fan-in in / groups x kernel: hidden if the number of groups stays as the width grows (ResNeXt's
            # cardinality), input-like if the group's width does (RegNet's): one model's shape cannot say (a review)
            refused.append((name, list(p.shape), f"parameter {name!r} {list(p.shape)}: a grouped convolution "
                            f"({conv.groups} groups): hidden if its number of groups stays fixed as the width grows "
                            "(ResNeXt's cardinality; its fan-in grows), vector-like if its group width does (RegNet; "
                            "its fan-in stays); add a rule (pattern, role) for it"))
            continue
        try:
            role, ratio = assign(name, seen(name, p), spec.width, rules,
                                 layout="jax" if name in stored_in_out else "torch")
        except ValueError as exc:
            view = list(seen(name, p))
            refused.append((name, list(p.shape), str(exc) if name not in convs else str(exc).replace(
                f"{name!r} {view}", f"{name!r} {list(p.shape)} (a convolution, read by its channels [out, in] = "
                f"{view})", 1)))
            continue
        if name in convs and role is Role.hidden:  # its fan-in is a group's inputs x the kernel's size
            ratio = convs[name].fan_in(tuple(p.shape)) / spec.width
        elif role is Role.readout and len(matrix := seen(name, p)) >= 2:
            # a readout's init std scales with its fan-in as a hidden one's does (spec.init_std("readout", r)): a
            # ResNet's fc on 2C channels took the std of a fan-in of C (a review, session 65)
            fan = convs[name].fan_in(tuple(p.shape)) if name in convs else \
                matrix[0] if name in stored_in_out else matrix[-1]
            ratio = fan / spec.width
        placed.append((name, p, role, ratio))
    if refused:  # every parameter that asks for a role at once (a ViT took three runs, one error each: a review)
        raise ValueError(refusal(refused) + _missed(every, written))
    # the readout's bias has no width-sized axis: fixed, not vector (its LR grew with the width under SGD). A readout
    # tied to the embedding is listed once, under its first name (`wte.weight`): its alias says where the readout is
    # (`lm_head.bias` beside a tied `lm_head.weight`: it stayed vector, a code review)
    settled = settle_fixed([(name, oriented(name, p), role) for name, p, role, _ in placed]
                           + _aliases(model, placed, spec, rules), rules, spec.width, layout="torch")
    placed = [(name, p, role, ratio) for (name, p, _, ratio), role in zip(placed, settled[:len(placed)], strict=True)]
    placed = _embedding_first(model, placed, spec, rules)
    try:
        check_width([(name, oriented(name, p), role) for name, p, role, _ in placed], spec.width, "torch", rules,
                    said=[name for name, *_ in placed if matched_name(name) in fan_in], layout_option=False)
    except ValueError as exc:  # the shapes as stored, with what was read ("W_Q is [256, 256]" for [8, 256, 32])
        said = str(exc)
        for name, p, _, _ in placed:
            if (view := list(oriented(name, p))) != list(p.shape):
                for old in (f"{name!r} is {view}", f"{name!r} {view}"):
                    said = said.replace(old, f"{old.removesuffix(str(view))}{list(p.shape)} (read as [out, in] = "
                                             f"{view})")
        raise ValueError(said) from None
    if note := router_note([(name, oriented(name, p), role) for name, p, role, _ in placed], rules, spec.width,
                           fan_in):
        warnings.warn(note, stacklevel=4)
    if note := several_readouts_note([(name, oriented(name, p), role) for name, p, role, _ in placed]):
        warnings.warn(note, stacklevel=4)
    _check_in_out_bare(placed, oriented, fan_in, {*convs, *views, *stored_in_out, *_dense(model)})
    # a bare stack of matrices (experts as one nn.Parameter) is read [..., out, in], torch's layout; stored [..., in,
    # out] and used as x @ W[e] (GPT-OSS's, Llama 4's experts) it reads the same, its fan-in the other axis: said
    # (its init std was off by sqrt(F / D) either way, unsaid: a review, session 53)
    stacks = [name for name, p, role, _ in placed if role is Role.hidden and len(p.shape) >= 3 and name not in convs
              and matched_name(name) not in fan_in and name not in inferred and name not in views
              and not re.search(r"(^|\.)(weight|w)$", name) and p.shape[-1] != p.shape[-2]]
    if stacks:
        warnings.warn(f"{', '.join(stacks[:3])}{' ...' if len(stacks) > 3 else ''}: stacks of matrices read in "
                      "torch's layout [..., out, in], the last axis their fan-in; one stored [..., in, out] (used as "
                      f"x @ W[e], as GPT-OSS's and Llama 4's experts are) needs fan_in={{{stacks[0]!r}: in}}",
                      stacklevel=4)
    _check_headless(model, placed, spec, rules, seen, stored_in_out, every, written)
    _check_mu_readout(model, placed, spec, rules)
    _check_tied(model, placed, spec, rules)
    return placed


#: an MLP's up and down projections by their own names (a bare nn.Parameter's: ``W1``, ``w_up``, ``up_proj``)
_UP_NAME = re.compile(r"(^|\.)(w1|w_1|w_up|up|up_proj|gate_proj|fc1|c_fc|w_in|w13)$", re.IGNORECASE)
_DOWN_NAME = re.compile(r"(^|\.)(w2|w_2|w_down|down|down_proj|fc2|c_proj|w_out)$", re.IGNORECASE)


def _check_in_out_bare(placed: list[tuple[str, Any, Role, float]], oriented: Any, fan_in: Mapping[str, int],
                       known: set[str]) -> None:
    """Warn of a bare hidden matrix (an ``nn.Parameter`` of a module of the model's own, no layer's ``weight``) named
    like an MLP's up or down projection whose shape, read [out, in], says the other: an up projection with a fan-in
    larger than its output, a down projection with a smaller one. Such a matrix is most likely stored [in, out] and
    used as ``x @ W`` (W1 [D, 4D]), its fan-in the first axis: read as the last, its init std was 2x off at a 4x MLP,
    at every width, unsaid (a review, session 67). A shape alone cannot say it (an [out, in] down projection [D, 4D]
    reads the same), so only the names do, and only a warning."""
    hits = []
    for name, p, role, _ in placed:
        key = matched_name(name)
        if role is not Role.hidden or len(p.shape) != 2 or key in fan_in or name in known \
                or re.search(r"(^|\.)(weight|kernel)$", key, re.IGNORECASE):
            continue
        out, fan = oriented(name, p)
        if (_UP_NAME.search(key) and fan > out) or (_DOWN_NAME.search(key) and fan < out):
            hits.append((name, [int(d) for d in p.shape]))
    if hits:
        name, shape = hits[0]
        more = f" (and {', '.join(repr(n) for n, _ in hits[1:3])}{' ...' if len(hits) > 3 else ''})" \
            if len(hits) > 1 else ""
        warnings.warn(f"{name!r} {shape}{more}: a bare matrix named like an MLP's "
                      f"{'up' if _UP_NAME.search(matched_name(name)) else 'down'} projection, read as stored [out, "
                      f"in] (nn.Linear's layout), fan-in {shape[-1]}, which its name says is the other way round: if "
                      f"it is stored [in, out] and used as x @ W, its fan-in is {shape[0]}: give it, fan_in="
                      f"{{{name!r}: {shape[0]}}} (its init std is otherwise sqrt({shape[-1]} / {shape[0]}) off)",
                      UserWarning, stacklevel=5)


def _check_headless(model: Any, placed: list[tuple[str, Any, Role, float]], spec: GroupSpec, rules: list[GroupRule],
                    seen: Any, stored_in_out: set[str], every: Sequence[str], written: Sequence[GroupRule]) -> None:
    """A model with an embedding or input layer but no readout (none named, none by class, none tied to it): a
    matrix that may be its output layer, unpaired (no transposed twin, as an MLP's up and down projections have),
    is a ValueError asking for its role; otherwise a warning says no readout was found, naming the top-level
    matrices that could be it (a classifier of 1024 classes at width 256 trained as a hidden matrix, and the model
    ended with no readout, unsaid: a review, session 65). A backbone or feature extractor has none: the warning is
    said once per model."""
    shapes = [(name, tuple(seen(name, p))[::-1] if name in stored_in_out else tuple(seen(name, p)), role)
              for name, p, role, _ in placed]
    if not any(role is Role.embedding for _, dims, role in shapes if len(dims) >= 2) \
            or any(role is Role.readout for _, _, role in shapes):
        return  # a readout, or none asked of a model without an input layer
    try:
        every_name = list(model.named_parameters(remove_duplicate=False))
    except TypeError:  # an object whose named_parameters() takes no such flag
        every_name = []
    listed, tables = {name for name, _, _, _ in placed}, {id(p) for _, p, role, _ in placed if role is Role.embedding}
    if any(id(p) in tables and name not in listed for name, p in every_name):
        return  # an embedding with a second name is tied (its logits module's, whatever a rule makes of it): said so
    candidates = readout_candidates(shapes, rules, spec.width, "torch")
    embedding = next(name for name, dims, role in shapes if role is Role.embedding and len(dims) >= 2)
    dims = {name: d for name, d, _ in shapes}
    if unpaired := [name for name, alone in candidates if alone]:
        name = unpaired[0]
        more = f" (and the same for {', '.join(map(repr, unpaired[1:3]))})" if len(unpaired) > 1 else ""
        raise ValueError(f"parameter {name!r} {list(dims[name])}: no rule names its role, and the model has an "
                         f"embedding or input layer ({embedding!r}) but no readout: its shape reads as a hidden "
                         "matrix's, with no transposed twin (an MLP's up and down projections pair), as a "
                         f"classifier's of {dims[name][0]} classes at width {spec.width} does; add a rule (pattern, "
                         f"role) for it: ({rule_for(name)}, 'readout') for the output layer, ({rule_for(name)}, "
                         f"'hidden') for a projection{more}" + _missed(every, written))
    named = [name for name, _ in candidates]
    which = (f"if its output layer is {' or '.join(map(repr, named[:3]))}{' ...' if len(named) > 3 else ''} (a "
             f"hidden matrix by its shape), add a rule: ({rule_for(named[0])}, 'readout')" if named else
             "if it has an output layer, add a rule (pattern, 'readout') for it")
    try:
        t = f"multiply them by {tied_readout_multiplier(spec):.6g} (theory.groups.tied_readout_multiplier(spec))"
    except ValueError:  # a spec without init stds
        t = "give them the readout's forward scale over the embedding's init std"
    warnings.warn(f"no readout found: the model has an embedding or input layer ({embedding!r}) and no parameter "
                  "that a name, a class (microsoft/mup's MuReadout) or a tie to the embedding makes the readout (a "
                  f"backbone or feature extractor has none); {which}; if the logits use the embedding's matrix (h @ "
                  f"W.T), {t}",
                  UserWarning, stacklevel=5)


def _missed(names: Sequence[str], written: Sequence[GroupRule]) -> str:
    """For an error that asks for a rule: the rules of the caller's that matched nothing, a likely typo (the error
    said only "no rule names its role", a review)."""
    missed = unmatched_rules(names, written)
    return "" if not missed else (f"; your rules {', '.join(repr(r.pattern) for r in missed)} matched no "
                                  "parameter: is one of them misspelt?")


#: keyword arguments of abcscale's, not an optimizer's group keys: refused by param_groups, whose other keywords go into
#: every group (each with what to do instead)
_NOT_GROUP_KEYS = {
    "layout": "is no option of abcscale.torch, which reads nn.Linear's [out, in] and Hugging Face's Conv1D's [in, out] "
              "by class: a parameter of your own stored [in, out] (used as x @ W) gives its fan-in, fan_in={name: n}",
    "fan_ins": "is no option: fan_in={name: n}", "fanin": "is no option: fan_in={name: n}",
    "rule": "is no option: rules=[(pattern, role), ...]",
    "generator": "is init_'s", "frozen": "is init_'s",
    **{k: "is recommend's, which makes the spec" for k in ("constants", "base_width", "parameterization", "optimizer",
                                                         "beta", "epsilon_mode", "lr_mode")},
}


def param_groups(model: Any, spec: SpecLike, *, rules: Sequence[GroupRule] | Any = None, names: bool = True,
                 width: int | None = None, form: Form | str | None = None, fan_in: Mapping[str, int] | None = None,
                 **extra: Any) -> list[dict[str, Any]]:
    """``torch.optim`` parameter groups: one per role and fan-in ratio, each with the role's ``lr``, Adam's
    ``eps`` (adam, adamw, muon's AdamW groups; adafactor: ``(1e-15, floor)``, torch.optim.Adafactor's floor on
    the second moment, square-rooted, and on rms(W), which maps with the form), ``weight_decay`` (adamw, lion,
    muon: the coupled lr * wd form of torch.optim.AdamW; sgd: its L2 term, where the spec carries a decay: one for
    every group is refused), a
    ``name`` (unless ``names=False``) and, under muon, ``use_muon``.

    ``fan_in`` ``{name: n}`` gives a parameter's fan-in where its shape cannot say it (a stack of experts stored
    [experts, in, out] and used as ``x @ W[e]``; torch's layout reads the last axis): hidden unless a rule names it.
    ``extra`` goes into every group (e.g. ``betas=(0.9, 0.95)``, SGD's ``momentum``). Give the groups to the
    optimizer the spec was made for: ``torch.optim.AdamW`` for adamw (``torch.optim.Adam``'s weight_decay is an
    L2 term, not a decoupled decay), ``Adam`` for adam, ``SGD`` for sgd. PyTorch has no Lion: for lion give them
    to a Lion that takes per-group ``lr`` and ``weight_decay`` and decays by lr * wd (``lion_pytorch.Lion``,
    ``timm.optim.Lion``). For muon, hidden matrices form their own groups with ``use_muon=True`` (lr and
    weight_decay only), everything else ``use_muon=False``: give the first to ``torch.optim.Muon`` (its default
    ``adjust_lr_fn``, the spectral shape factor sqrt(max(1, fan_out / fan_in)) the rule assumes) and the rest
    to ``torch.optim.AdamW``, or all of them, with ``names=False``, to Keller Jordan's ``MuonWithAuxAdam``
    (which checks each group's keys). A hidden conv kernel is Muon's too, as one [out, in x kernel] matrix (a
    warning says so: torch.optim.Muon takes 2-D matrices only; MuonWithAuxAdam flattens 4-D filters so, not 3-D
    or 5-D ones)."""
    if wrong := sorted(set(extra) & set(_NOT_GROUP_KEYS)):
        # extra goes into every group, where torch.optim ignores a key it does not know: `layout='jax'` sat in each
        # group and changed nothing, unsaid (a review, session 67)
        raise TypeError("param_groups: " + "; ".join(f"{k!r} {_NOT_GROUP_KEYS[k]}" for k in wrong)
                        + " (the extra keyword arguments go into every group, for the optimizer)")
    spec = _spec(spec, width, form)
    # only the keys this optimizer's groups set: SGD's groups leave weight_decay (its L2 term) to the caller
    clash = sorted(set(extra) & _spec_keys(spec.optimizer))
    if spec.optimizer is Optimizer.sgd and spec.weight_decay_mode is None and not extra.get("weight_decay", 1):
        clash.remove("weight_decay")  # weight_decay=0 (a config's wd of 0) decays nothing: nothing to transfer
    if clash == ["weight_decay"] and spec.optimizer is Optimizer.sgd:
        raise ValueError("weight_decay: one decay for every group does not transfer across widths: SGD's step "
                         "shrinks W by lr x weight_decay, and the groups' LRs scale apart (under muP the input "
                         "layer's grows 16x at 16x the base width, so would its decay); give the decay tuned at the "
                         "base width to recommend (weight_decay=, --weight-decay), whose groups each carry theirs"
                         + ("" if spec.weight_decay_mode is None else ", as this spec's do: leave it out here"))
    if spec.optimizer in (Optimizer.adam, Optimizer.adafactor) and extra.get("weight_decay"):
        # one number for every group: torch.optim.AdamW's lr x wd then differs per group as the LRs scale apart, the
        # case docs/theory.md section 9 shows does not transfer (it was taken, unsaid: a review; SGD's was refused)
        raise ValueError(f"weight_decay: an {spec.optimizer.value} spec carries no decay, and one decay for every "
                         "group does not transfer across widths (each group's lr x wd scales apart); recommend with "
                         "-o adamw and the decay tuned at the base width (weight_decay=, --weight-decay), whose "
                         "groups each carry theirs")
    if clash:
        raise ValueError(f"{', '.join(clash)}: set per group from the spec; leave {'it' if len(clash) == 1 else 'them'}"
                         " out of the extra keys")
    warn_unapplied_multipliers(spec, form, "param_groups", model)
    from abcscale.usecases.snippets import check_torch_decay  # the use cases load only when groups are made

    check_torch_decay(spec)
    groups: dict[tuple[Role, float, bool], dict[str, Any]] = {}
    placed = _placed(model, spec, rules, fan_in)
    if any(hasattr(p, "infshape") for _, p, _, _ in placed):  # microsoft/mup's set_base_shapes marks each tensor
        # said of the groups' own lrs: the README's mup path (each group's lr set to spec.mup.lr[name], then
        # MuAdam) is right, and the warning said "not MuAdam" to it too (a review)
        warnings.warn("the model's tensors carry microsoft/mup's base shapes: these groups' lrs are for torch.optim's "
                      "optimizer; for mup's MuAdam/MuSGD set each group's lr to spec.mup.lr[group['name']] first "
                      "(given these lrs, its own per-layer scaling would apply a second time: the hidden LR divided "
                      "by the width ratio again)", stacklevel=2)
    if spec.optimizer is Optimizer.adafactor:  # torch's ρ_t = min(lr, 1/sqrt(t)); optax's adafactor has no cap
        top = max(spec[role].lr for role in {role for _, _, role, _ in placed})
        warnings.warn(f"torch.optim.Adafactor caps each group's LR at 1/sqrt(step): from step {math.ceil(top**-2):,} "
                      f"on the largest LR here ({top:.3g}) is cut, and the groups' ratios the spec sets collapse "
                      "toward one LR; for a run that long use abcscale.optax's adafactor (no cap) or an Adafactor "
                      "without it", stacklevel=2)
    # Muon's hidden LR (c = 0 under muP) is derived for its orthogonalised step: a conv kernel is Muon's too, as
    # one [out, in x kernel] matrix (AdamW at that LR stepped 16x too far at 16x the base width, a review, session 51)
    flat = [(name, len(p.shape)) for name, p, role, _ in placed
            if spec.optimizer is Optimizer.muon and role is Role.hidden and len(p.shape) > 2]
    convs, views, stored_in_out = _convs(model), _transformer_lens(model)[0], _in_out(model)
    if spec.optimizer is Optimizer.muon and (swapped := [
            name for name, p, role, _ in placed if role is Role.hidden and len(p.shape) == 2
            and (name in views or name in stored_in_out or _given_in_out(name, p, fan_in))
            and p.shape[0] != p.shape[1]]):
        # torch.optim.Muon's default adjust_lr_fn, sqrt(max(1, rows / cols)), reads [out, in]: an up projection
        # stored [in, out] got the down projection's factor and the other way round, unsaid (a code review)
        warnings.warn(f"{', '.join(swapped[:4])}{' ...' if len(swapped) > 4 else ''}: stored [in, out] "
                      "(TransformerLens's, Hugging Face's Conv1D, a fan_in given as the first axis) and in the "
                      "use_muon groups; torch.optim.Muon reads a matrix as [out, in], so its shape factor "
                      "sqrt(max(1, fan_out / fan_in)), which the "
                      "spec's LR assumes, is taken the wrong way round for these: give Muon their transposes, or "
                      "an adjust_lr_fn that reads them [in, out]", stacklevel=2)
    if heads := [name for name, _ in flat if name in views]:
        # TransformerLens's W_Q [heads, d_model, d_head] is one [d_model, heads x d_head] matrix, not a stack of
        # matrices each orthogonalised alone
        warnings.warn(f"{', '.join(heads[:4])}{' ...' if len(heads) > 4 else ''}: TransformerLens's per-head "
                      "attention matrices are in the use_muon groups; theory's hidden LR for Muon assumes each "
                      "orthogonalised as its whole matrix (W_Q, W_K, W_V as [d_model, heads x d_head], W_O as "
                      "[heads x d_head, d_model]), which torch.optim.Muon (2-D only) cannot take: give them to a Muon "
                      "that reshapes them so, or keep them out of Muon", stacklevel=2)
        flat = [(name, d) for name, d in flat if name not in views]
    if stacks := [(name, d) for name, d in flat if name not in convs]:
        # a stack of matrices (experts [E, out, in], a scan's [depth, ...]) is E matrices, each orthogonalised
        # alone, not one flattened filter (the conv advice below was given for them: a review, session 53)
        named = ", ".join(f"{n} ({d}-D)" for n, d in stacks[:4]) + (" ..." if len(stacks) > 4 else "")
        warnings.warn(f"{named}: stacks of hidden matrices are in the use_muon groups; theory's hidden LR for Muon "
                      "assumes each matrix of the stack orthogonalised alone (torch.optim.Muon takes 2-D matrices "
                      "only and raises on them): give them to a Muon that orthogonalises the last two axes per "
                      "leading index, or use abcscale.optax (optax's muon does)", stacklevel=2)
        flat = [(name, d) for name, d in flat if name in convs]
    if flat:
        named = ", ".join(f"{n} ({d}-D)" for n, d in flat[:4]) + (" ..." if len(flat) > 4 else "")
        warnings.warn(f"{named}: hidden tensors of more than two axes are in the use_muon groups (theory's hidden "
                      "LR for Muon assumes its orthogonalised step on the [out, in x kernel] matrix); "
                      "torch.optim.Muon takes 2-D matrices only and raises on them; Keller Jordan's MuonWithAuxAdam "
                      "flattens 4-D (Conv2d) filters so, but not 3-D (Conv1d) or 5-D ones: give those to an "
                      "optimizer that flattens each to [out, in x kernel], or use abcscale.optax", stacklevel=2)
    for _, p, role, ratio in placed:
        muon = spec.optimizer is Optimizer.muon and role is Role.hidden and len(p.shape) >= 2
        g = groups.get((role, ratio, muon))
        if g is None:
            g = groups[(role, ratio, muon)] = _group(spec, role, ratio, muon, names, extra)
        g["params"].append(p)
        if spec.optimizer is Optimizer.adafactor and str(getattr(p, "dtype", "")) == "torch.float16":
            # 1e-15 squared is 0 in float16 and rsqrt(0) is inf (a code review: NaN after three steps): a float16
            # group keeps torch's own eps[0], float16's machine epsilon
            g["eps"] = (None, g["eps"][1])
    return list(groups.values())


def _given_in_out(name: str, p: Any, fan_in: Mapping[str, int] | None) -> bool:
    """Whether ``fan_in`` gives ``name``'s fan-in as its second-last axis, not its last: stored [..., in, out]."""
    n = {matched_name(k): v for k, v in (fan_in or {}).items()}.get(matched_name(name))
    return n is not None and len(p.shape) >= 2 and int(p.shape[-2]) == n != int(p.shape[-1])


def _group(spec: GroupSpec, role: Role, ratio: float, muon: bool, names: bool, extra: dict[str, Any]
           ) -> dict[str, Any]:
    """An empty group of ``role`` at fan-in ``ratio`` x width (``muon``: a Muon-trained hidden matrix)."""
    s, opt = spec[role], spec.optimizer
    name = role.value if ratio == 1.0 else f"{role.value} (fan-in {ratio:g}x width)"
    g: dict[str, Any] = {"params": [], **({"name": name} if names else {}), "lr": s.lr, **extra}
    if opt in (Optimizer.adam, Optimizer.adamw, Optimizer.muon) and s.epsilon is not None and not muon:
        g["eps"] = s.epsilon
    if opt is Optimizer.adafactor:
        # eps[0]: torch's default (float32's machine epsilon, 1.2e-7) floors the mean of g^2 over a matrix's rows
        # and the second moment at its square: below a gradient RMS of about 6.5e-6 the step lost its row and
        # column normalisation (19% off over five steps at 1e-6), and a hidden gradient's RMS falls with the width
        # (docs/theory.md section 5); 1e-15 floors the second moment at 1e-30, optax's epsilon on g^2 (the
        # reference's). eps[1]: the floor on rms(W), mapped with the form
        g["eps"] = (ADAFACTOR_EPS1, PARAM_SCALE_FLOOR if s.param_scale_floor is None else s.param_scale_floor)
    if opt in (Optimizer.adamw, Optimizer.lion, Optimizer.muon) or (opt is Optimizer.sgd and spec.weight_decay_mode):
        g["weight_decay"] = s.weight_decay or 0.0  # explicit 0: torch.optim.Muon's default decay is 0.1
    # an adam spec (an sgd one given no decay) decays nothing and leaves the key to the optimizer: torch.optim.AdamW
    # given these groups adds its default 0.01 (use Adam, or weight_decay=0); SGD's L2 comes per group from the spec
    # (recommend with weight_decay=), as SGD(groups, weight_decay=5e-4) would apply one number to every group
    if opt is Optimizer.muon:
        g["use_muon"] = muon
    return g


def init_(model: Any, spec: SpecLike, *, rules: Sequence[GroupRule] | Any = None, generator: Any = None,
          width: int | None = None, form: Form | str | None = None, frozen: bool = False,
          fan_in: Mapping[str, int] | None = None) -> dict[str, float]:
    """Redraw every parameter that has an init std as normal(0, std), in place (``p.data``, so outside
    autograd); vector-like ones (biases, norm gains) keep their init. Returns ``{name: std}`` of those drawn.
    A parameter tied to another (one tensor, two names) appears once in ``named_parameters()``. An embedding
    that is an ``nn.Linear`` or convolution (a dense input layer) takes the embedding's std times its
    fan-in^-1/2 (:func:`theory.groups.dense_input_std`); an ``nn.Embedding``'s is the std itself, and its
    ``padding_idx`` row is zero again after the draw, as PyTorch initialises it (it gets no gradient, so a drawn
    row stayed random). Frozen parameters (``requires_grad=False``: pretrained, or fixed on purpose) are kept, with
    a warning naming them, unless ``frozen=True``."""
    spec, imported = _resolved(spec, width, form)
    warn_unapplied_multipliers(spec, form, "init_", model)
    drawn = {}
    dense, stored_in_out, padding, convs = _dense(model), _in_out(model), _padding_rows(model), _convs(model)
    kept = []
    placed = _placed(model, spec, rules, fan_in)
    # a tied tensor is placed under its embedding name (_embedding_first), but said as named_parameters() lists it
    # (`lm_head.weight` where the module declares lm_head first: a review, session 65)
    listed = {id(p): name for name, p in _named(model)}
    for name, p, role, ratio in placed:
        std = spec.init_std(role, ratio)
        if std is not None and role is Role.embedding and name in convs:  # a group's inputs x the kernel
            std = std * convs[name].fan_in(tuple(p.shape)) ** -0.5
        elif std is not None and role is Role.embedding and name in dense:
            std = dense_input_std(std, tuple(p.shape), "jax" if name in stored_in_out else "torch")
        if std is not None and not frozen and getattr(p, "requires_grad", True) is False:
            kept.append(listed.get(id(p), name))
        elif std is not None:
            p.data.normal_(0.0, std, generator=generator)
            if (row := padding.get(id(p))) is not None:
                p.data[row].zero_()
            drawn[listed.get(id(p), name)] = std
    if kept:
        warnings.warn(f"abctorch.init_: kept {len(kept)} frozen parameter(s) (requires_grad=False) as they are: "
                      f"{', '.join(kept[:5])}{' ...' if len(kept) > 5 else ''}; frozen=True redraws them too",
                      UserWarning, stacklevel=2)
    if imported is not None:  # `mup import --init-std`'s hidden std, drawn x r^-1/2 at a fan-in r x the width
        from abcscale.usecases.mup import wide_fan_in_note

        wide = {name: ratio for name, _, role, ratio in placed
                if role is Role.hidden and ratio != 1.0 and name in drawn}
        if note := wide_fan_in_note(imported, spec, wide, "abctorch.init_"):
            warnings.warn(note, UserWarning, stacklevel=2)
    return drawn


def _padding_rows(model: Any) -> dict[int, int]:
    """``{id(weight): padding_idx}`` of each ``nn.Embedding`` with a padding row, by class name."""
    if not callable(getattr(model, "named_modules", None)):
        return {}
    return {id(module.weight): int(module.padding_idx) for _, module in model.named_modules()
            if "Embedding" in {c.__name__ for c in type(module).__mro__}
            and getattr(module, "padding_idx", None) is not None and getattr(module, "weight", None) is not None}


def multipliers(model: Any, spec: SpecLike, *, rules: Sequence[GroupRule] | Any = None, width: int | None = None,
                form: Form | str | None = None, fan_in: Mapping[str, int] | None = None) -> dict[str, float]:
    """``{name: multiplier}`` for each parameter whose output the forward must scale (a multiplier other than
    1): the abc form's embedding and readout, the mup form's readout (``MuReadout``'s 1/width_mult: left out, with
    a warning, where the readout is a ``MuReadout``, whose forward applies it), and an embedding tied to the
    readout's logits under the readout's name (:func:`theory.groups.tied_readout_multiplier`, in every form).
    Otherwise empty for the multiplier_free form, whose model applies none."""
    spec = _spec(spec, width, form)
    out: dict[str, float] = {}
    placed = _placed(model, spec, rules, fan_in)
    # a MuReadout's forward applies the mup form's readout multiplier itself (as param_groups reads it): listed, a
    # user could apply it twice (a review); other forms refuse a MuReadout (_check_mu_readout)
    mu = _mu_readouts(model) if spec.form is Form.mup else set()
    applied: dict[str, float] = {}
    for name, _, role, _ in placed:
        m = spec[role].multiplier
        if m is not None and m != 1.0:
            if name in mu:
                applied[name] = m
            else:
                out[name] = m
    if applied:
        warnings.warn(f"{', '.join(f'{n} ({m:.4g})' for n, m in applied.items())}: microsoft/mup's MuReadout "
                      "applies the mup form's readout multiplier (output_mult / width_mult) in its forward, so it is "
                      "left out here: multiply nothing more", UserWarning, stacklevel=2)
    rules = _all_rules(model, spec, rules)
    for pair in _tied(model, placed, spec, rules):  # the tied logits' scale, keyed by the readout's name
        if (logits := _tied_logits(pair)) is not None and (tied := tied_readout_multiplier(spec)) != 1.0:
            out[logits] = tied
    return out


__all__ = ["init_", "multipliers", "param_groups"]
