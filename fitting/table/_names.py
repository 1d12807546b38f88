"""The vocabulary of a sweep table's column names: which names say a step count, a budget, a tracker's bookkeeping,
a measurement, a run id, an LR of one layer, a weight decay. Predicates over a name alone, no table."""

from __future__ import annotations

import re
from typing import Any

from abcscale.schemas.fit import ColumnMapping

#: swept per-layer constants recognised by name (each is a coordinate of its own, in log2).
CONSTANT_PREFIXES = ("gamma_", "init_scale_", "multiplier_")
#: the runner's column of the base width's weight decay (constants.weight_decay) its per-layer decays come from
DECAY_COLUMN = "base_weight_decay"

#: columns that split groups automatically when they take more than one value.
EXTRA_GROUP_COLUMNS = ("depth", "steps", "base_width")

#: the prefix of a warning that makes a prediction unreliable: fitting.predict's UNRELIABLE (not imported: it loads
#: scipy), printed in bold
UNRELIABLE = "unreliable: "


def option(field: str) -> str:
    """An option named in a message, by its FitOptions field between backticks: the use case says it as its
    caller knows it (``--group-cols`` on the CLI, ``group_cols`` in a REST request), so the fitter names no
    caller's spelling (:func:`abcscale.usecases.fits.fit_sweep`)."""
    return f"`{field}`"


#: training-budget columns a table may carry unnamed: one of them moving with the size changes what the exponent is
BUDGET_COLUMNS = ("tokens", "train_tokens", "batch_size", "batch")
#: column names (lower case, separators dropped) that hold a training budget, besides any holding "token",
#: "batch", "sample", "datasize" or "steps": Chinchilla's D and the usual short names (not "B" or "C": abc's
#: exponents; not FLOPs, which grow with the width by construction)
BUDGET_NAMES = frozenset({"d", "bs", "bsz", "gbs", "datasetsize", "samples", "nsamples", "iters", "iterations",
                          "trainsteps", "numsteps", "totalsteps", "nsteps"})


#: the group columns theory reads: an empty cell among filled ones is an error, not a group of its own
THEORY_COLUMNS = ("parameterization", "optimizer", "optimizer_variant", "lr_mode", "alignment")


def is_budget_name(name: str) -> bool:
    """Whether a column's name says it holds a training budget (tokens, batch size, steps, compute)."""
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    if any(w in key for w in ("persec", "persecond", "throughput", "micro")):  # a speed, or a memory-side split
        return False
    return key in BUDGET_NAMES or any(w in key for w in ("token", "batch", "sample", "datasize", "steps"))


#: column names (their last words, joined: ``n_layer``, ``config.num_hidden_layers``) that count a model's layers
_DEPTH_NAMES = frozenset({"nlayer", "nlayers", "numlayers", "numhiddenlayers", "depth", "layers", "nblocks",
                          "numblocks", "nblock"})
#: text column names (their last words, joined) that say which model the runs trained: two of them fitted as one law
#: are the prediction of neither
_FAMILY_NAMES = frozenset({"model", "models", "modelname", "modeltype", "modelfamily", "modelarch",
                           "modelarchitecture", "arch", "architecture", "family", "configname"})
#: words of a text column's name that say it names something per run or per file (an output folder, a path)
_NAME_WORDS = frozenset({"name", "id", "dir", "folder", "path", "file", "filename", "url", "uri", "uuid", "hash"})


def _suffix_named(name: object, names: frozenset[str]) -> bool:
    """Whether a column's name ends in one of ``names`` (its last words, joined: ``config.model_type``)."""
    words = [w for w in re.split(r"[^a-z0-9]+", str(name).lower()) if w]
    return any("".join(words[i:]) in names for i in range(len(words)))


#: a tracker's or a team's bookkeeping labels (lower case, separators dropped): wandb's ``Group``, ``Tags``,
#: ``Job Type``, ``Sweep``, ``Notes``. One value per size is a launch's batch ("small-sweep" at widths 128, 256), no
#: model family (:func:`_size_families`; a review saw "name Group a group column" advised for one sweep's two launches)
_LABEL_KEYS = frozenset({"group", "groups", "rungroup", "groupname", "tag", "tags", "runtags", "jobtype", "sweep",
                         "sweepid", "sweepname", "notes", "note"})


#: loss-column names (lower case, separators dropped) of a measure where higher is better
_SCORE_WORDS = ("acc", "accuracy", "score", "bleu", "rouge", "f1", "auc", "reward", "winrate", "exactmatch")


def _higher_is_better(m: ColumnMapping) -> list[str]:
    """A note when the loss column is named as a score (accuracy, BLEU, reward): the fitter looks for the lowest
    value, and a score's optimum then reads as the grid's edge (a user review: 'widen the grid downward')."""
    key = _key(m.loss_col)
    if not any(key.endswith(w) for w in _SCORE_WORDS):  # acc, val_acc, eval_accuracy; not accum_loss
        return []
    return [f"{m.loss_col}: the fitter looks for the lowest value of the loss column; if {m.loss_col} is a score where "
            f"higher is better (accuracy, BLEU, reward), fit 1 - it, or its negative, instead"]


#: size columns named as a width (their key: lower case, letters and digits), not as a parameter count
_WIDTH_NAMES = frozenset({"width", "dmodel", "hiddensize", "hiddendim", "nembd", "embdim", "embeddim", "dim",
                          "modeldim", "dmodelsize", "nhidden"})


def _width_named(name: str) -> bool:
    """Whether a column's name ends in a width's (``params_width``, ``config.model.d_model``, ``hparams/hidden_size``):
    its last words, joined, are one of :data:`_WIDTH_NAMES`."""
    words = [w for w in re.split(r"[^a-z0-9]+", str(name).lower()) if w]
    return any("".join(words[i:]) in _WIDTH_NAMES for i in range(len(words)))


#: words of a column's name that say it holds a held-out loss (val_loss, eval/loss, loss/valid, ValidationLoss)
_HELD_OUT_WORDS = frozenset({"val", "valid", "validation", "eval", "evaluation", "heldout", "test", "dev"})


def _held_out_like(name: object) -> bool:
    words = re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", str(name)).lower())
    return ("loss" in words and any(w in _HELD_OUT_WORDS for w in words)) or any(
        w in {f"{h}loss" for h in _HELD_OUT_WORDS} | {f"loss{h}" for h in _HELD_OUT_WORDS} for w in words)


#: the runner's LR columns besides the three layers' own (:data:`LR_LAYER_COLUMNS`): its vector and fixed roles' own
#: LRs and log2 of beta
_RUNNER_LR_COLUMNS = ("log2_lr", "lr_vector", "lr_fixed")


def _role_lr(name: object) -> bool:
    """Whether a column holds one layer's or role's own LR (the runner's ``lr_hidden`` and ``lr_vector``, a team's
    ``hidden_lr`` or ``lr/head``: :func:`lr_layer_of`) or the runner's ``log2_lr``: no candidate for the sweep's one
    LR, and in the runner's tables beta times a factor of the width and gamma."""
    return str(name) in _RUNNER_LR_COLUMNS or lr_layer_of(str(name)) is not None


def _lr_named(name: object) -> bool:
    """Whether a column's name says it holds a learning rate, as the missing-column hint reads it (``_LIKELY``):
    ``learning_rate`` anywhere in it, or a word of it that starts or ends with ``lr`` (``lr``, ``train/lr``,
    ``peak_lr``, ``maxLR``, ``lr0``). Not ``lr`` inside a word: Hugging Face's ``eval_runtime`` ("eva-lr-untime") was
    suggested as the LR (a review)."""
    return "learningrate" in _key(name) or any(w.startswith("lr") or w.endswith("lr") for w in _name_words(name))


#: words of an LR column's name, besides its LR words, that say it holds the LR a run was configured with (a config's
#: namespace: Hugging Face's ``config_learning_rate``, MLflow's ``params.lr``) or its schedule's peak or start
#: (``peak_lr``, ``max_lr``, ``initial_lr``, YOLO's ``lr0``); not ``base`` (``base_lr``, MAE's ``blr``: the LR a batch
#: scaling rule multiplies, no schedule's) nor ``scaled``
_CONFIGURED_LR_WORDS = frozenset({"config", "configs", "cfg", "configured", "args", "hparams", "hparam", "hp", "hps",
                                  "hyperparameters", "hyperparams", "params", "param", "peak", "max", "maximum", "init",
                                  "initial", "start", "starting", "lr0"})
#: words that may stand beside the LR's words in the name of the LR a trainer logs as it trains (``learning_rate``,
#: ``train/lr``, ``trainer/learning_rate``, Lightning's ``lr-AdamW``, ``current_lr``)
_LOGGED_LR_WORDS = frozenset({"lr", "learning", "rate", "learningrate", "train", "training", "trainer", "optim",
                              "optimizer", "optimiser", "current", "cur", "last", "final", "scheduled", "sched",
                              "logged", "actual", "step", "metrics", "metric", "charts", "adam", "adamw", "sgd", "lion",
                              "muon", "adafactor"})


def _logged_lr_name(name: object) -> bool:
    """Whether an LR column is named as the LR a trainer logs (``learning_rate``, ``lr``, ``train/lr``, ``lr-AdamW``,
    Lightning's param groups ``pg0``): the value at a log step, which a schedule moves."""
    plain = [w for w in re.split(r"[^a-z0-9]+", str(name).lower()) if w]  # lr-AdamW: lr, adamw
    return any(bool(words) and all(w in _LOGGED_LR_WORDS or re.fullmatch(r"pg\d*|\d+", w) for w in words)
               for words in (_name_words(name), plain))


def _configured_lr_name(name: object) -> bool:
    """Whether an LR column is named as the configured LR or its schedule's peak or start (``config_learning_rate``,
    ``config.lr``, ``peak_lr``, ``max_lr``, ``initial_lr``): :data:`_CONFIGURED_LR_WORDS`."""
    return bool(set(_name_words(name)) & _CONFIGURED_LR_WORDS)


#: the usual text a CSV reader (pandas' defaults among them) reads as a missing value
_MISSING_WORDS = frozenset({"", "nan", "-nan", "na", "n/a", "null", "none", "<na>", "#n/a", "#na"})
#: text that says a run failed, in place of its loss
_FAILED_WORDS = frozenset({"diverged", "divergence", "failed", "fail", "crashed", "crash", "killed", "error",
                           "oom", "-"})


#: what a tracker's export names each role's column, lower case with separators dropped (a hint, never a choice)
_LIKELY = {"size_col": ("width", "dmodel", "hiddensize", "hiddendim", "nembd", "embeddim", "modeldim", "nparams"),
           "lr_col": ("learningrate", "lr"), "loss_col": ("loss",)}


def _shown(name: Any) -> str:
    """A column's name as a message shows it: quoted where a space at its ends or a comma would hide it."""
    text = str(name)
    return repr(text) if text != text.strip() or "," in text or not text else text


def _multiplier_named(name: object) -> bool:
    """Whether a size column's name says it holds a width multiplier (``width_mult``, ``widthMultiplier``,
    ``width_multiplier``; not ``multihead_dim``)."""
    return any(w.endswith(("mult", "mults", "multiplier", "multipliers")) for w in _name_words(name))


#: How a diverged flag may be written (lower-cased); an empty cell or NaN is "not flagged".
_TRUE = ("true", "1", "1.0", "yes", "t", "y")
_FALSE = ("false", "0", "0.0", "no", "f", "n", "", "nan", "none", "<na>")


#: a tracker's per-run bookkeeping (wandb's Runtime, Created, Name, ID; MLflow's run_id, start_time), lower case with
#: separators dropped: measurements or labels of a run, never its settings, though they repeat by chance (Runtime in
#: whole seconds) or once a run is exported twice. Also the environment a tracker records beside each run (wandb's
#: wandb_version, Python Version, Job Type, GPU Type, Commit; MLflow's tags.mlflow.*; Ray Tune's done, pid, node_ip,
#: time_total_s; Optuna's datetime_start), whose values differ at random between the seeds of a cell: read as settings,
#: a version column made `--strict` fail on "two or more configurations" (a review). Not wandb's Group nor Tags (a
#: team's own label for its sweep's configurations, as often as a launch's), nor a GPU count (with a per-device batch it
#: sets the global batch): those stay settings, said where they differ within a cell
TRACKER_COLUMNS = frozenset({"state", "runstate", "status", "runstatus",  # said by _failed_runs
                             "runtime", "wandbruntime", "timestamp", "wandbtimestamp", "created", "createdat",
                             "updated", "updatedat", "heartbeat", "heartbeatat", "starttime", "endtime", "duration",
                             "name", "runname", "displayname", "id", "runid", "experimentid", "user", "host",
                             "hostname", "notes", "wandb", "artifacturi", "sweep", "sweepid", "node", "nodename",
                             "gpu", "gpuname", "device", "partition", "machine", "worker", "rank", "slurmjobid",
                             "jobid",
                             # wandb's environment columns
                             "wandbversion", "pythonversion", "jobtype", "gputype", "gpumodel", "commit", "gitcommit",
                             "githash", "gitsha", "gitremote", "gitbranch", "program", "codepath", "os", "platform",
                             "executable", "username", "email", "entity", "url", "cudaversion",
                             "torchversion", "jaxversion", "cpucount", "startedat", "finishedat",
                             # Ray Tune's per-trial columns (ResultGrid.get_dataframe)
                             "done", "trialid", "date", "pid", "nodeip", "logdir", "experimenttag", "timethisiters",
                             "timetotals", "timesincerestore", "timestepstotal", "timestepssincerestore",
                             "episodestotal", "checkpointdirname", "shouldcheckpoint",
                             # Optuna's trials_dataframe
                             "number", "datetimestart", "datetimecomplete", "trialstate",
                             # MLflow's run table
                             "lifecyclestage", "artifactlocation"})
#: name prefixes (lower case, separators dropped) of a tracker's own bookkeeping: MLflow's tags.mlflow.* (runName,
#: source.git.commit, user), wandb's system metrics (system/gpu.0.temp)
_TRACKER_PREFIXES = ("tagsmlflow", "mlflow", "system", "sysinfo")


def is_tracker_column(name: object) -> bool:
    """Whether a column is a tracker's bookkeeping (:data:`TRACKER_COLUMNS`, MLflow's ``tags.mlflow.*``): never a
    setting of the runs."""
    key = _key(name)
    return key in TRACKER_COLUMNS or key.startswith(_TRACKER_PREFIXES)


#: words of a column's name that name a measurement (a second loss, a metric) where a tracker's prefix comes before
#: them (``train/loss``, ``val_acc``, ``best_val_loss``): alone they also name settings of one (PaLM's ``z_loss``,
#: OLMo's ``softmax_auxiliary_loss``, ``reward_clip``), which read as measurements were pooled as seeds, their
#: diverged runs dropped as copies (a code review)
_MEASURE_WORDS = frozenset({"loss", "losses", "acc", "accuracy", "ppl", "perplexity", "metric", "metrics", "score",
                            "scores", "reward", "return", "bleu", "rouge", "f1", "auc", "nll", "mse", "mae", "rmse",
                            "bpb", "bpc", "wer", "cer", "error", "err"})
#: measurement words no setting's name ends in: a measurement wherever they come last (``word_ppl``, ``top1_accuracy``)
#: or stand alone; not ``acc`` (``grad_acc`` accumulates gradients) nor ``loss`` (``z_loss``)
_PLAIN_MEASURES = frozenset({"accuracy", "ppl", "perplexity", "bleu", "rouge", "f1", "auc", "nll", "mse", "mae",
                             "rmse", "bpb", "bpc", "wer", "cer"})
#: the words a tracker or a training loop puts before a measurement's name: its split (train, val, eval, test), its
#: summary of the run (best, final, min, mean) and the namespaces of wandb's summary and Hydra's metrics
_MEASURE_PREFIXES = frozenset({"train", "training", "val", "valid", "validation", "eval", "evaluation", "test", "dev",
                               "holdout", "heldout", "summary", "metric", "metrics", "best", "final", "last", "min",
                               "max", "mean", "avg", "average", "ema", "smoothed", "running", "episode", "top1",
                               "top5"})
#: ... unless it also holds one of these: a loss's settings (loss_type, loss_weight, aux_loss_alpha, use_z_loss)
_SETTING_WORDS = frozenset({"type", "weight", "scale", "fn", "func", "function", "coef", "coeff", "coefficient",
                            "name", "kind", "mode", "scaling", "alpha", "beta", "lambda", "multiplier", "mult",
                            "factor", "clip", "clipping", "use", "enable", "enabled", "disable", "no", "eps",
                            "epsilon", "temperature", "margin", "threshold", "target", "patience", "freq", "every",
                            "interval"})


def _name_words(name: object) -> list[str]:
    """A column's name in lower-case words (``evalLoss``: eval, loss; ``summary/best_val_loss``: summary, best, ...)."""
    return [w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", str(name)).lower()) if w]


def is_measurement_name(name: object) -> bool:
    """Whether a column's name says it holds a measurement of each run: a tracker's prefix before a measurement's
    word (``train/loss``, ``summary/best_val_loss``, ``val_acc``, ``evalLoss``, ``valloss``), wandb's ``summary/``
    or Hydra's ``metrics`` namespace, or a word only a measurement ends in (``word_ppl``). It differs between the
    seeds of a cell by nature, so it is no setting, and two runs of one setting and seed differ in it (a rerun). A
    loss's settings (``loss_type``, ``loss_scale``, ``z_loss``, ``use_z_loss``, ``aux_loss_alpha``) are not. Read
    with the values (:func:`_measured`): a column of a few values the same at every LR of a curve is a setting
    whatever its name."""
    words = _name_words(name)
    if not words or any(w in _SETTING_WORDS for w in words):
        return False
    if words[0] in ("summary", "metric", "metrics") or words[-1] in _PLAIN_MEASURES:
        return True
    if len(words) == 1 and words[0] in _MEASURE_WORDS:
        return True  # "loss", "reward", "score" alone name no setting
    for i, w in enumerate(words):
        if w in _MEASURE_WORDS and any(p in _MEASURE_PREFIXES for p in words[:i]):
            return True
        # fused: valloss, trainacc, bestloss (not zloss: "z" is no tracker's prefix)
        if any(w.endswith(x) and w[:-len(x)] in _MEASURE_PREFIXES for x in ("loss", "acc", "accuracy", "ppl")):
            return True
    return False


#: a tracker's run state that says the run did not end as it was meant to (wandb: crashed, failed, killed;
#: MLflow: FAILED, KILLED; Optuna: FAIL, and PRUNED, a trial its pruner stopped early, whose value is its last
#: intermediate one; Ray Tune: ERROR; Slurm: CANCELLED, TIMEOUT)
_FAILED_STATES = frozenset({"crashed", "failed", "fail", "killed", "preempted", "error", "errored", "pruned",
                            "cancelled", "canceled", "timeout", "aborted"})
#: a state that says the run has not ended: whatever loss it has (none yet, NaN) is no result, nor a divergence
#: (Optuna's WAITING, Ray Tune's PAUSED among them)
_WAITING_STATES = frozenset({"running", "pending", "scheduled", "queued", "waiting", "paused"})
#: the names (lower case, separators dropped) of a tracker's run-state column
_STATE_COLUMNS = ("state", "runstate", "status", "runstatus", "trialstate")


#: words of a column's name that say it holds a run's best value so far, not its last: finite for a run that
#: diverged after its first eval
_BEST_WORDS = frozenset({"best", "min", "minimum", "lowest", "max", "maximum", "highest", "peak", "top"})


def _best_so_far(name: object) -> bool:
    """Whether a column's name says it holds a best-so-far value (``best_val_loss``, ``min_loss``, ``loss_so_far``,
    ``bestLoss``)."""
    return any(w in _BEST_WORDS or w.startswith(("best", "lowest")) for w in _name_words(name)) \
        or "sofar" in _key(name)


def _key(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


#: progress counters, lower case with separators dropped (wandb's ``_step`` is ``step``); ``best_step``,
#: ``warmup_step`` or ``decay_step`` are not (a measurement or a setting), nor is ``steps`` (a budget). Also an
#: epoch, an update or a checkpoint's count, and Ray Tune's ``training_iteration`` / ``iterations_since_restore``
#: (a trial ASHA stopped at 10 of 100 iterations was fitted as finished, unsaid: a review)
STEP_NAMES = frozenset({"step", "iter", "iteration", "lastiteration", "laststep", "currentstep", "trainstep", "it",
                        "epoch", "update", "updates", "numupdates", "checkpoint", "ckpt", "trainingiteration",
                        "iterationssincerestore", "trainerepoch", "trainepoch"})
#: progress a history export logs in a budget's unit (tokens or samples seen so far): a history where each run holds
#: several of them (:func:`_history`), but not a step count elsewhere: as one value per run the same names hold a
#: budget (``num_tokens``), said by :func:`_budget_with_size`
PROGRESS_NAMES = frozenset({"tokensseen", "numtokens", "ntokens", "tokensprocessed", "tokenstrained", "consumedtokens",
                            "consumedsamples", "samples", "samplesseen", "numsamples", "examplesseen", "seentokens",
                            "totaltokens", "cumulativetokens", "trainertokens"})


def is_step_name(name: object) -> bool:
    """Whether a column counts the steps a run trained (``step``, ``global_step``, wandb's ``_step``,
    ``trainer/global_step``, ``iteration``, ``epoch``, Ray Tune's ``training_iteration``): its progress, not a
    setting."""
    key = _key(name)
    return key in STEP_NAMES or key.endswith("globalstep")


#: step names a setting has too: an update rule, an init checkpoint, an epoch budget (:func:`_counts_steps`,
#: :func:`_two_point_counters`)
_AMBIGUOUS_STEP_NAMES = frozenset({"it", "epoch", "trainepoch", "trainerepoch", "update", "updates", "numupdates",
                                   "checkpoint", "ckpt"})
#: ... of which a count is a whole number (an epoch may be fractional: Hugging Face's Trainer logs epoch 0.42)
_WHOLE_STEP_NAMES = _AMBIGUOUS_STEP_NAMES - {"epoch", "trainepoch", "trainerepoch"}


#: a tracker's columns that name one run (wandb's Name and ID, MLflow's run_id, its start time): the same at two
#: rows of a run's cell, they are one run logged twice
_RUN_ID_KEYS = frozenset({"name", "runname", "displayname", "id", "runid", "trialid", "created", "createdat",
                          "starttime", "startedat", "datetimestart", "experimenttag", "logdir"})


#: run-id columns that name a run by its label (wandb's Name, a log folder): a rerun may take an earlier run's, so
#: they tell a history only where most runs hold 3 rows or more (a run's ID or start time: 2)
_RUN_LABEL_KEYS = frozenset({"name", "runname", "displayname", "experimenttag", "logdir"})


#: words of a column's name that say it holds a replicate's label, a seed by another name
_REPLICATE_WORDS = frozenset({"trial", "replicate", "replica", "repeat", "rep", "repetition", "run", "runidx"})


def _replicate_like(name: str) -> bool:
    """Whether a column's name says it labels replicates (``data_seed``, ``trial``, ``config.replicate``)."""
    words = [w for w in re.split(r"[^a-z0-9]+", str(name).lower()) if w]
    return "seed" in _key(name) or any(w in _REPLICATE_WORDS for w in words)


#: words before a weight decay's own name that say where it was configured or logged (``config_weight_decay``,
#: ``optimizer.weight_decay``, MLflow's ``params.wd``), not which decay it is (``independent_``, ``base_``, ``final_``)
_DECAY_PREFIX_WORDS = frozenset({"config", "configs", "cfg", "args", "hparams", "hparam", "hp", "hps",
                                 "hyperparameters", "hyperparams", "params", "param", "parameters", "optimizer",
                                 "optimiser", "optim", "opt", "train", "training", "trainer", "solver", "settings",
                                 "run"})


def _decay_named(name: object) -> bool:
    """Whether a column's name is a weight decay's own (``weight_decay``, ``wd``, ``weight-decay``,
    ``config.weight_decay``, and flattened so, ``config_weight_decay``, ``config_wd``, ``optimizer.weight_decay``:
    its last words, after words of :data:`_DECAY_PREFIX_WORDS`): not a layer's (``weight_decay_hidden``), the
    runner's ``independent_weight_decay`` or ``base_weight_decay``."""
    if _key(re.split(r"[./]", str(name))[-1]) in ("weightdecay", "wd"):
        return True
    words = _name_words(name)
    for i in range(len(words)):
        if "".join(words[i:]) in ("weightdecay", "wd"):
            return i > 0 and all(w in _DECAY_PREFIX_WORDS for w in words[:i])
    return False


def _without_epsilon(optimizer: Any) -> bool:
    """Whether theory's rules for ``optimizer`` (a table's cell) have no epsilon; an unknown name: not known to."""
    from abcscale import theory

    try:
        return not theory.layer_rules(str(optimizer).strip().lower()).has_epsilon
    except (ValueError, KeyError):
        return False


#: the per-layer LR columns the runner writes (lr_l = beta gamma_l (n / b)^-c_l in the abc form); the vector-like
#: and fixed roles follow the embedding's and say nothing more
LR_LAYER_COLUMNS = {"embedding": "lr_embedding", "hidden": "lr_hidden", "readout": "lr_readout"}

#: words that name a layer in a team's own per-layer LR column (``hidden_lr``, ``lr/head``, ``embedLR``); a name
#: with words of two layers, or a multiplier's word (``head_lr_mult``: a ratio, not an LR), names none
_LAYER_WORDS = {"embedding": {"embedding", "embeddings", "embed", "emb", "wte", "input"},
                "hidden": {"hidden", "hid", "matrix", "matrices", "body"},
                "readout": {"readout", "head", "lmhead", "output", "out", "unembed", "unembedding", "logits",
                            "classifier"}}
_RATIO_WORDS = {"mult", "mults", "multiplier", "multipliers", "ratio", "scale", "factor", "frac", "fraction"}
#: words that, beside ``out`` / ``output`` / ``o``, name a transformer block's output projection (``out_proj``,
#: ``o_proj``, ``attn_out``): a hidden matrix, not the readout
_BLOCK_WORDS = {"proj", "projection", "attn", "attention", "selfattn", "mlp", "ffn"}


def lr_layer_of(column: str) -> str | None:
    """The layer whose own LR a column holds, by its name: the runner's ``lr_hidden`` and a team's ``hidden_lr``,
    ``lr/readout``, ``head_lr`` or ``embedLearningRate`` alike; None for the sweep's one LR (``lr``, ``beta``,
    ``config.learning_rate``). A review: a team's ``hidden_lr`` fitted as the LR was spread as beta, every layer
    then off by the hidden layer's gamma and width factor. ``out`` / ``output`` beside a block's word
    (:data:`_BLOCK_WORDS`: ``out_proj_lr``, ``o_proj_lr``, ``attn_out_lr``) is an attention or MLP output
    projection, a hidden matrix: read as the readout's until a review."""
    words = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", str(column))]
    if {"out", "output", "o"} & set(words) and _BLOCK_WORDS & set(words):  # out_proj_lr: a block's, hidden
        words = ["hidden" if w in ("out", "output", "o") else w for w in words]
    joined = [a + b for a, b in zip(words, words[1:], strict=False)]
    if not ({"lr", "learningrate"} & {*words, *joined}) or _RATIO_WORDS & set(words):
        return None
    layers = {layer for layer, names in _LAYER_WORDS.items() if names & {*words, *joined}}
    return layers.pop() if len(layers) == 1 else None


#: the layers a per-layer constant's column names (gamma_<layer>, ...): a Constants' PerLayer's
CONSTANT_LAYERS = ("embedding", "hidden", "readout")


def _constant_like(c: Any) -> bool:
    """A per-layer constant's column (gamma_hidden, ...) or the runs' epsilon: what :func:`_trained_constants` and
    :func:`_trained_epsilon` read and say."""
    return c == "epsilon" or (isinstance(c, str) and c.startswith(CONSTANT_PREFIXES)
                              and any(c == f"{p}{layer}" for p in CONSTANT_PREFIXES for layer in CONSTANT_LAYERS))
