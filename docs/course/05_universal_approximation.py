# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. The universal-approximation question
#
# The tutorial ends with an open question: RNNs are known to approximate many-to-one maps as well as one likes,
# but can they approximate *any many-to-many* map, a whole output sequence from a whole input sequence? The
# answer depends on the map and on the model, and some of it can be computed exactly. This notebook shows four
# pieces of the answer, each with a number from theory and a trained model next to it:
#
# 1. **The causal floor.** A left-to-right RNN emits `y_t` after reading only `x_1 .. x_t`. If the target needs
#    future inputs, no such model, of any width, can do better than a computable error.
# 2. **Delay.** Letting the model answer D steps late lowers that floor, to zero once D covers the look-ahead.
# 3. **Bidirectional models** read the whole sequence first and remove the floor.
# 4. **The encoder-decoder bottleneck.** A model that squeezes the input into one vector of width m before
#    writing the output cannot beat a rank floor set by m (for linear models).
#
# The error is the *normalised* mean squared error, NMSE = MSE / Var(y): 1 is as bad as predicting the mean, 0 is
# perfect. `rnnjax.probes` holds the targets, the theory and the training; `experiments/universal_approximation.py`
# runs the full study (see [the probe's guide](../../universal_approximation/)).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from rnnjax.probes import targets, theory
from rnnjax.probes.models import Architecture, ModelSpec, Readout
from rnnjax.probes.sweep import sweep
from rnnjax.probes.training import TrainConfig

QUICK = os.environ.get("RNNJAX_COURSE_QUICK") == "1"  # the test suite's short setting
LENGTH = 32
SEEDS = (0,) if QUICK else (0, 1)
CONFIG = TrainConfig(length=LENGTH, steps=150 if QUICK else 400, test_size=128, long_factors=(), fast_compile=True)


def median_nmse(records, **match):
    """The median test NMSE over seeds of the rows whose fields equal ``match``."""
    values = [row.nmse_test for row in records if all(getattr(row, k) == v for k, v in match.items())]
    return float(np.median(values))


# %% [markdown]
# ## 1. A target that needs the future
#
# The centred moving sum adds the inputs from four steps back to four steps ahead:
# `y_t = x_{t-4} + ... + x_t + ... + x_{t+4}`. At step t a left-to-right model has not seen `x_{t+1} .. x_{t+4}`;
# they are independent noise, so the part of `y_t` they contribute cannot be predicted. `theory.causal_floor`
# computes the best NMSE any causal model can reach: the share of `y_t`'s variance that comes from the unseen
# inputs (about 4/9 here).

# %%
target = targets.centred_sum(4)
delays = list(range(0, 9))
floors = [theory.causal_floor(target, LENGTH, delay=d) for d in delays]
print("causal floor at D=0:", round(floors[0], 3), " D=4:", round(floors[4], 4))

# %% [markdown]
# ## 2. Training at several delays
#
# `sweep` trains every (model, width, delay, seed) of a configuration in one compiled program. The model is a
# linear RNN (`linear_dense`, its own readout) of width 16, at output delays 0, 2 and 4 (D = 4 covers the
# look-ahead). Each row gives the test NMSE with a 95% interval for the test set's sampling error.

# %%
trained_delays = (0, 2, 4)
linear = ModelSpec("linear_dense", readout=Readout.NONE)
records, _ = sweep(target, [linear], widths=(16,), seeds=SEEDS, delays=trained_delays, config=CONFIG)
for row in records:
    print(f"D={row.delay} seed {row.seed}: NMSE {row.nmse_test:.3g} [{row.nmse_test_low:.3g}, "
          f"{row.nmse_test_high:.3g}]  floor {theory.causal_floor(target, LENGTH, delay=row.delay):.3g}")

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(delays, floors, "k--", label="causal floor (theory, any model)")
ax.plot(trained_delays, [median_nmse(records, delay=d) for d in trained_delays], "o", markersize=8,
        label="linear RNN, trained (median over seeds)")
ax.set(xlabel="output delay D", ylabel="test NMSE", title="Centred sum: the floor falls with the delay")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The trained model sits on the floor: at D = 0 its error is not an optimisation failure, it is the information
# missing at step t. A delay of D steps lets the model see D more inputs before answering, and the floor falls
# until D = 4, where nothing is missing.
#
# ## 3. Reading both ways
#
# A bidirectional model runs one RNN forwards and one backwards and combines them, so every output sees the whole
# input. For the centred sum the floor disappears without any delay.

# %%
bidirectional = ModelSpec("linear_dense", readout=Readout.NONE, bidirectional=True)
records_bi, _ = sweep(target, [bidirectional], widths=(16,), seeds=SEEDS, delays=(0,), config=CONFIG)
causal_nmse, bi_nmse = median_nmse(records, delay=0), median_nmse(records_bi)
print(f"causal D=0: {causal_nmse:.3f} (floor {floors[0]:.3f});  bidirectional D=0: {bi_nmse:.2e} (floor 0)")

fig, ax = plt.subplots(figsize=(5, 2.8))
ax.bar(["causal, D=0", "bidirectional, D=0"], [causal_nmse, bi_nmse], color=["tab:grey", "tab:blue"])
ax.axhline(floors[0], color="black", linestyle="--", linewidth=1, label="causal floor")
ax.set(ylabel="test NMSE", title="Centred sum: one direction vs both")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Bidirectionality is not the whole story. A linear RNN applies the same rule at every step (it is
# *time-invariant*), and reversal (`y_t = x_{T-1-t}`) is not: even reading both ways, a linear RNN's best error on
# it is far from 0. `theory.time_invariant_floor` computes it:

# %%
print("reversal, best time-invariant linear model, bidirectional:",
      round(theory.time_invariant_floor(targets.reversal(), LENGTH, delay=None), 3))

# %% [markdown]
# ## 4. The encoder-decoder bottleneck
#
# An encoder-decoder reads N inputs into one vector of width m, then writes the M outputs from that vector alone.
# For a linear model the best it can do is keep the m most important directions of the map: the *rank floor*
# (Eckart-Young), the share of the map's energy beyond its m largest singular values. For reversal of N = 8
# inputs every direction matters equally, so the floor is 1 - m/8.
#
# We train a linear encoder-decoder and a GRU encoder-decoder with attention (whose decoder may look back at every
# encoder state, so it is not forced through the vector).

# %%
N = 8
reversal = targets.reversal()
widths = (2, 4) if QUICK else (2, 4, 8)
config_ed = TrainConfig(length=N, steps=CONFIG.steps, test_size=512, long_factors=(), fast_compile=True)
specs = [ModelSpec("linear_dense", architecture=Architecture.ENCODER_DECODER),
         ModelSpec("gru", architecture=Architecture.ATTENTION)]
records_ed, _ = sweep(reversal, specs, widths=widths, seeds=SEEDS, config=config_ed)
rank_floors = [theory.rank_floor(reversal, N, m) for m in widths]

fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(widths, rank_floors, "k--", marker="_", markersize=14, label="rank floor (linear encoder-decoders)")
for model in dict.fromkeys(row.model for row in records_ed):
    ax.plot(widths, [median_nmse(records_ed, model=model, width=m) for m in widths], "o-", label=model)
ax.set(xlabel="vector width m", ylabel="test NMSE", title=f"Reversal of {N} inputs through a width-m vector")
ax.legend(fontsize=8)
plt.show()
for model in dict.fromkeys(row.model for row in records_ed):
    print(model, [round(median_nmse(records_ed, model=model, width=m), 3) for m in widths],
          " floor", [round(f, 3) for f in rank_floors])

# %% [markdown]
# The linear encoder-decoder cannot go below its rank floor, whatever it is trained for (a value a hair below it is
# the finite test set's sampling error: compare each row's interval); attention is not bound by it,
# because the decoder reads the encoder's states directly. With this small budget of steps and seeds the
# numbers are an illustration; the main job trains more and reports every number with its interval.
#
# ## What to keep
#
# - Many-to-many approximation has exact limits that width cannot fix: a causal model misses what the target
#   takes from the future (the causal floor), an encoder-decoder loses what does not fit through its vector.
# - An output delay or a second direction removes the causal floor; attention sidesteps the vector.
# - `rnnjax.probes.theory` computes these floors; `sweep` trains models in one program so trained errors can be
#   put next to them. The full study and how to read its report: [the probe's guide](../../universal_approximation/).
#
# Next: [6. Scaling](../06_scaling/).
