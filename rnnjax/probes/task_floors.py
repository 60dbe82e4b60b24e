"""Data-driven linear floors of the task probe: the best linear predictors, fitted on train, scored on test.

Aligned tasks (features: the inputs at lags l, x_{t-l}, zero outside the sequence; one weight per lag and
feature for every step, i.e. time-invariant, like an RNN's readout of a linear filter):

* causal with delay D: lags -D .. W-1 (W = ``window`` past steps, D future ones): what a unidirectional linear
  model that emits y_t at step t + D can use;
* non-causal: lags -(W-1) .. W-1: a window on both sides (a bidirectional linear model's view).

Different input and output lengths (features: the whole padded input, flattened):

* linear: the best linear map of the input to all outputs;
* rank m: the best linear map through an m-number vector (reduced-rank regression; for labels a factorised
  logistic map started from the truncated full one): the linear counterpart of an encoder-decoder of width m.

Real outputs: ridge least squares (centred; the penalty chosen on validation from :data:`PENALTIES`);
labels: multinomial logistic regression with an L2 penalty chosen the same way (scipy L-BFGS). Every floor's
test score comes with its 95% interval (:mod:`rnnjax.probes.task_metrics`). On white inputs and a linear target
the causal floor at delay D is the closed-form :func:`rnnjax.probes.theory.time_invariant_floor` (also
:func:`~rnnjax.probes.theory.causal_floor` for a time-invariant target) and the rank-m floor is
:func:`~rnnjax.probes.theory.rank_floor`, within the intervals (tests/probes/test_task_floors.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.optimize

from rnnjax.probes import task_metrics
from rnnjax.probes.task_data import Split, TaskData

PENALTIES = (1e-8, 1e-5, 1e-3, 1e-2, 1e-1, 1.0)
"""Ridge penalties as fractions of the mean feature variance (least squares); the best on validation is kept."""
LOGISTIC_PENALTIES = (1e-4, 1e-3)
"""L2 penalties of the logistic floors (per label), chosen on validation; each fit starts from the previous one."""
LOGISTIC_ITERATIONS = 100
"""L-BFGS iterations per logistic fit (a cap: most aligned fits stop earlier, at scipy's gradient tolerance)."""


@dataclasses.dataclass(frozen=True)
class Design:
    """Features and targets of one split part: features [n, M, F] (aligned) or [n, 1, F] (different lengths)."""

    features: np.ndarray
    targets: np.ndarray
    mask: np.ndarray


def lag_features(inputs: np.ndarray, lags) -> np.ndarray:
    """[n, T, len(lags) * d]: x_{t - l} for each lag l (zero outside 0..T-1), features of one lag together."""
    steps = inputs.shape[1]
    shifted = []
    for lag in lags:
        padded = np.pad(inputs, ((0, 0), (max(lag, 0), max(-lag, 0)), (0, 0)))
        start = max(-lag, 0) if lag < 0 else 0
        shifted.append(padded[:, start : start + steps] if lag < 0 else padded[:, :steps])
    return np.concatenate(shifted, axis=-1)


def causal_lags(window: int, delay: int | None) -> list[int]:
    """Lags -D .. W-1 (delay D), or -(W-1) .. W-1 for ``delay=None`` (non-causal)."""
    future = window - 1 if delay is None else delay
    return list(range(-future, window))


def _aligned_design(data: TaskData, indices: np.ndarray, lags) -> Design:
    part = data.subset(indices)
    return Design(lag_features(part.inputs, lags), part.outputs, part.output_mask())


def _flat_design(data: TaskData, indices: np.ndarray) -> Design:
    part = data.subset(indices)
    return Design(part.inputs.reshape(part.size, 1, -1), part.outputs, part.output_mask())


# --------------------------------------------------------------------------- ridge (real outputs)


def _valid_rows(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """Aligned designs: (features, targets) of the valid steps, [rows, F] and [rows, d]."""
    return design.features[design.mask].astype(np.float64), design.targets[design.mask].astype(np.float64)


class Ridge:
    """Centred ridge regression y = (x - mean_x) W + mean_y for every penalty at once (one eigendecomposition)."""

    def __init__(self, features: np.ndarray, targets: np.ndarray):
        self.mean_x, self.mean_y = features.mean(0), targets.mean(0)
        centred = features - self.mean_x
        gram = centred.T @ centred
        self.values, self.vectors = np.linalg.eigh(gram)
        self.projected = self.vectors.T @ (centred.T @ (targets - self.mean_y))
        self.scale = max(float(np.trace(gram)) / max(gram.shape[0], 1), 1e-300)

    def weights(self, penalty: float) -> np.ndarray:
        return self.vectors @ (self.projected / (self.values + penalty * self.scale)[:, None])

    def predict(self, features: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return (features - self.mean_x) @ weights + self.mean_y


def _score(predictions: np.ndarray, design: Design, labels: bool) -> dict[str, float]:
    return {k: float(v) for k, v in task_metrics.scores(predictions, design.targets, design.mask, labels).items()}


def ridge_floor(train: Design, validation: Design, test: Design) -> dict[str, Any]:
    """The aligned ridge fit with the penalty of least validation NMSE; test scores with intervals."""
    ridge = Ridge(*_valid_rows(train))
    predict = lambda design, w: ridge.predict(design.features, w)  # noqa: E731
    errors = [_score(predict(validation, ridge.weights(p)), validation, False)["error"] for p in PENALTIES]
    penalty = PENALTIES[int(np.argmin(errors))]
    return {**_score(predict(test, ridge.weights(penalty)), test, False), "penalty": penalty}


def reduced_rank_floors(train: Design, validation: Design, test: Design, ranks) -> list[dict[str, Any]]:
    """Full-rank and rank-m linear maps of the flattened input to all outputs (reduced-rank regression).

    Rank m keeps the top m right singular vectors of the full fit's training predictions (the exact reduced-rank
    solution when every output step is valid; with varying output lengths the fit treats padding as zero
    targets, so it is an achievable map, an upper bound on the best rank-m one).
    """
    flat = lambda design: (design.features[:, 0], design.targets.reshape(design.targets.shape[0], -1))  # noqa: E731
    ridge = Ridge(*flat(train))
    shaped = lambda values, design: values.reshape(design.targets.shape)  # noqa: E731
    predict = lambda design, w: shaped(ridge.predict(flat(design)[0], w), design)  # noqa: E731
    errors = [_score(predict(validation, ridge.weights(p)), validation, False)["error"] for p in PENALTIES]
    penalty = PENALTIES[int(np.argmin(errors))]
    weights = ridge.weights(penalty)
    fitted = (flat(train)[0] - ridge.mean_x) @ weights
    _, _, right = np.linalg.svd(fitted, full_matrices=False)
    rows = [{"floor": "linear", "rank": None, **_score(predict(test, weights), test, False), "penalty": penalty}]
    for rank in ranks:
        projector = right[:rank].T @ right[:rank]
        rows.append({"floor": "rank", "rank": int(rank), **_score(predict(test, weights @ projector), test, False),
                     "penalty": penalty})  # fmt: skip
    return rows


# --------------------------------------------------------------------------- logistic (labels)


@dataclasses.dataclass(frozen=True)
class Logistic:
    """logits [..., S, K] = standardised(x) W + b with W [F, S K], or W = A B (A [F, m], B [m, S K]) at rank m."""

    mean: np.ndarray
    scale: np.ndarray
    weights: tuple[np.ndarray, ...]
    bias: np.ndarray
    steps: int
    classes: int

    def logits(self, features: np.ndarray) -> np.ndarray:
        standard = (features - self.mean) / self.scale
        product = standard @ self.weights[0]
        for factor in self.weights[1:]:
            product = product @ factor
        return (product + self.bias).reshape(*features.shape[:-1], self.steps, self.classes)


def _logistic_objective(parameters, shapes, standard, labels, mask, penalty):
    """(mean cross-entropy over valid labels + penalty / 2 |weights|^2, gradient) for scipy."""
    sizes = [int(np.prod(shape)) for shape in shapes]
    pieces = np.split(parameters, np.cumsum(sizes)[:-1])
    *factors, bias = [piece.reshape(shape).astype(standard.dtype) for piece, shape in zip(pieces, shapes)]
    count, classes = standard.shape[0], bias.shape[0] // labels.shape[1]
    hidden = [standard]
    for factor in factors:
        hidden.append(hidden[-1] @ factor)
    logits = (hidden[-1] + bias).reshape(count, labels.shape[1], classes)
    logits = logits - logits.max(-1, keepdims=True)
    log_probabilities = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    total = mask.sum()
    picked = np.take_along_axis(log_probabilities, labels[..., None], -1)[..., 0]
    value = -np.sum(picked * mask) / total + 0.5 * penalty * sum(np.sum(f**2) for f in factors)
    gradient = np.exp(log_probabilities)
    np.put_along_axis(gradient, labels[..., None], np.take_along_axis(gradient, labels[..., None], -1) - 1, -1)
    upstream = (gradient * mask[..., None] / total).reshape(count, -1)
    gradients = []
    for index in reversed(range(len(factors))):
        gradients.insert(0, hidden[index].T @ upstream + penalty * factors[index])
        upstream = upstream @ factors[index].T
    gradients.append((gradient * mask[..., None] / total).reshape(count, -1).sum(0))
    return float(value), np.concatenate([g.ravel() for g in gradients]).astype(np.float64)


def fit_logistic(features, labels, mask, classes: int, penalty: float, rank: int | None = None,
                 start: Logistic | None = None) -> Logistic:  # fmt: skip
    """Multinomial logistic regression on features [n, F], labels int [n, S], mask [n, S] (L-BFGS).

    ``start`` (a full-rank fit) is the initial point: its weights, or at rank m (W = A B) their truncated SVD.
    The objective runs in float32 (the parameters and L-BFGS in float64).
    """
    mean, spread = features.mean(0), features.std(0)
    scale = np.where(spread > 0, spread, np.inf)  # constant features (never-seen one-hot positions) read as zero
    used = np.flatnonzero(spread > 0)
    standard = (features[:, used] - mean[used]) / scale[used]
    steps, width = labels.shape[1], labels.shape[1] * classes
    if rank is None:
        initial = [start.weights[0][used] if start is not None else np.zeros((used.size, width))]
    else:
        u, s, vt = np.linalg.svd(start.weights[0][used], full_matrices=False) if start else (None, None, None)
        initial = ([u[:, :rank] * np.sqrt(s[:rank]), np.sqrt(s[:rank])[:, None] * vt[:rank]] if start else
                   [np.random.default_rng(0).normal(0, 0.01, (used.size, rank)), np.zeros((rank, width))])
    bias = start.bias if start is not None else np.zeros(width)
    shapes = [w.shape for w in initial] + [bias.shape]
    x0 = np.concatenate([w.ravel() for w in initial] + [bias])
    arguments = (shapes, standard.astype(np.float32), labels.astype(np.int64), mask.astype(np.float32), penalty)
    result = scipy.optimize.minimize(_logistic_objective, x0, args=arguments, jac=True, method="L-BFGS-B",
                                     options={"maxiter": LOGISTIC_ITERATIONS})  # fmt: skip
    pieces = np.split(result.x, np.cumsum([int(np.prod(s)) for s in shapes])[:-1])
    *weights, bias = [piece.reshape(shape) for piece, shape in zip(pieces, shapes)]
    first = np.zeros((features.shape[1], weights[0].shape[1]))
    first[used] = weights[0]  # constant features get zero weight
    return Logistic(mean, scale, (first, *weights[1:]), bias, steps, classes)


def _rows(design: Design, flat: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logistic fitting arrays: one row per valid step (aligned), or one per sequence with its mask (flat)."""
    if flat:
        return design.features[:, 0], design.targets, design.mask
    labels = design.targets[design.mask]
    return design.features[design.mask], labels[:, None], np.ones((labels.shape[0], 1))


def _logistic_scores(model: Logistic, design: Design, flat: bool) -> dict[str, float]:
    logits = model.logits(design.features)  # [n, M, 1, K] aligned, [n, 1, M, K] flat
    logits = logits[:, 0] if flat else logits[:, :, 0]
    return _score(logits, design, True)


def logistic_floor(train: Design, validation: Design, test: Design, classes: int, flat: bool = False,
                   ranks=()) -> list[dict[str, Any]]:  # fmt: skip
    """The logistic fit (penalty of least validation cross-entropy) and, for ``ranks``, factorised rank-m fits."""
    rows = _rows(train, flat)
    fits = []
    for penalty in LOGISTIC_PENALTIES:
        fits.append(fit_logistic(*rows, classes, penalty, start=fits[-1] if fits else None))
    errors = [_logistic_scores(fit, validation, flat)["error"] for fit in fits]
    best = int(np.argmin(errors))
    penalty, model = LOGISTIC_PENALTIES[best], fits[best]
    out = [{"rank": None, **_logistic_scores(model, test, flat), "penalty": penalty}]
    for rank in ranks:
        reduced = fit_logistic(*rows, classes, penalty, rank=int(rank), start=model)
        out.append({"rank": int(rank), **_logistic_scores(reduced, test, flat), "penalty": penalty})
    return out


# --------------------------------------------------------------------------- all floors of a task


def linear_floors(data: TaskData, split: Split, window: int = 16, max_delay: int = 8, ranks=()) -> list[dict]:
    """Every floor of ``data`` as rows {'floor', 'delay', 'rank', 'error', 'error_low', 'error_high', 'penalty'}
    (+ accuracy for labels): 'causal' at D = 0..max_delay and 'noncausal' (aligned), or 'linear' and 'rank' m for
    every m in ``ranks`` (different lengths)."""
    if window < 1 or max_delay < 0:
        raise ValueError(f"window must be >= 1 and max_delay >= 0; got window={window}, max_delay={max_delay}")
    parts = (split.train, split.validation, split.test)
    if not data.aligned:
        designs = [_flat_design(data, part) for part in parts]
        if not data.labels:
            return [{"delay": None, **row} for row in reduced_rank_floors(*designs, ranks)]
        rows = logistic_floor(*designs, data.classes, flat=True, ranks=ranks)
        return [{"floor": "linear" if r["rank"] is None else "rank", "delay": None, **r} for r in rows]
    rows, window = [], min(window, data.input_steps)  # lags beyond the sequence only read zeros
    for delay in [*range(max_delay + 1), None]:
        designs = [_aligned_design(data, part, causal_lags(window, delay)) for part in parts]
        fit = logistic_floor(*designs, data.classes)[0] if data.labels else ridge_floor(*designs)
        rows.append({"floor": "causal" if delay is not None else "noncausal", "delay": delay, "rank": None, **fit})
    return rows
