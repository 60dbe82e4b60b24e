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
# # 4. Task types, sorted by sequence length
#
# The same recurrent cell serves very different tasks. What changes is how many vectors go in and how many come
# out: one label for a whole sequence (*many-to-one*), a sequence generated from one vector (*one-to-many*), one
# output per input (*tagging*), or an output sequence of its own length (*sequence-to-sequence*, and *CTC* for
# speech). This notebook trains a small model of each kind on toy data, using rnnjax's task heads
# (`rnnjax.tasks`) and its training loop (`rnnjax.training`).

# %%
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from rnnjax import RNN, gru
from rnnjax.tasks import toy_tasks
from rnnjax.tasks.ctc import ctc_loss, greedy_decode
from rnnjax.tasks.heads import ManyToOne, Tagger
from rnnjax.tasks.losses import cross_entropy, sequence_mask
from rnnjax.tasks.metrics import sequence_accuracy, trim
from rnnjax.tasks.seq2seq import Decoder, Seq2Seq
from rnnjax.training import loop, optimizers
from rnnjax.training.step import init_state, make_train_step

QUICK = os.environ.get("RNNJAX_COURSE_QUICK") == "1"  # the test suite's short setting
STEPS = 60 if QUICK else 300
HIDDEN = 32
TEST_SEED = 10**6  # test batches use a seed no training batch uses

# %% [markdown]
# Every model below is trained the same way: Adam on `loss(params, *batch)` where `batch_fn(step)` returns the
# step's batch. `make_train_step` builds one jitted update and `loop.fit` runs it.

# %%
def train(params, loss_fn, batch_fn, steps=STEPS, learning_rate=1e-2):
    optimizer = optimizers.make_optimizer(optimizers.OptimizerConfig(name="adam", learning_rate=learning_rate))
    step = make_train_step(lambda p, batch, key: (loss_fn(p, *batch), {}), optimizer)
    state = init_state(params, optimizer, jax.random.key(0))
    return loop.fit(state, step, batch_fn, steps, progress=False).params


# %% [markdown]
# ## Many-to-one: a whole sequence, one answer
#
# Parity: read 1 to 8 bits and say whether the number of ones is odd. The model reads the sequence and a readout
# maps its last state to two classes. Padding: sequences have different lengths, and `lengths` tells the model
# where each one ends.

# %%
model = ManyToOne(RNN(gru(), HIDDEN), num_outputs=2)
xs, lengths, labels = toy_tasks.parity(0)
print("inputs", xs.shape, "(one-hot bits) lengths", lengths[:6], "labels", labels[:6])

parity_loss = lambda p, xs, n, y: cross_entropy(model.apply(p, xs, lengths=n), y)
params = train(model.init(jax.random.key(1), 2), parity_loss, toy_tasks.parity)
xs, lengths, labels = toy_tasks.parity(TEST_SEED, 512)
predicted = model.apply(params, xs, lengths=lengths).argmax(-1)
by_length = [float((predicted == labels)[lengths == n].mean()) for n in range(1, 9)]
print(f"test accuracy: {float((predicted == labels).mean()):.3f}")

fig, ax = plt.subplots(figsize=(6, 2.5))
ax.bar(range(1, 9), by_length)
ax.axhline(0.5, color="grey", linestyle="--", label="chance")
ax.set(xlabel="sequence length", ylabel="test accuracy", title="Many-to-one: parity", ylim=(0, 1.05))
ax.legend()
plt.show()

# %% [markdown]
# ## Tagging: one output per input, and why direction matters
#
# Named-entity tagging marks each word as part of a name or not. In "Teddy bears are on sale" the word *Teddy* is
# an ordinary word; in "Teddy Roosevelt was a president" it starts a person's name. The evidence comes *after*
# the word. A tagger that reads left to right must tag *Teddy* before it sees the next word; a bidirectional
# tagger runs a second RNN from right to left and sees both sides.
#
# We build a tiny corpus of such sentences and train both.

# %%
words = ["<pad>", "Teddy", "bears", "Roosevelt", "are", "was", "on", "sale", "a", "great", "president", "cute",
         "soft", "famous", "he", "said"]
index = {word: i for i, word in enumerate(words)}
tag_names = ["O", "B-PER", "I-PER"]
toy_sentence = [("Teddy", 0), ("bears", 0)]
toy_person = [("Teddy", 1), ("Roosevelt", 2)]
toy_rests = [["are", "on", "sale"], ["are", "cute"], ["are", "soft"]]
person_rests = [["was", "a", "great", "president"], ["was", "famous"], ["said", "he", "was", "great"]]


def teddy_batch(seed, batch=64, length=7):
    rng = np.random.default_rng(seed)
    tokens = np.zeros((batch, length), np.int32)
    tags = np.zeros((batch, length), np.int32)
    lengths = np.zeros(batch, np.int32)
    for row in range(batch):
        person = rng.random() < 0.5
        start, rests = (toy_person, person_rests) if person else (toy_sentence, toy_rests)
        sentence = start + [(word, 0) for word in rests[rng.integers(len(rests))]]
        for t, (word, tag) in enumerate(sentence):
            tokens[row, t], tags[row, t] = index[word], tag
        lengths[row] = len(sentence)
    return jnp.asarray(tokens), jnp.asarray(lengths), jnp.asarray(tags)


tokens, lengths, tags = teddy_batch(TEST_SEED, 512)
first_word_accuracy = {}
for bidirectional in (False, True):
    tagger = Tagger(RNN(gru(), HIDDEN, bidirectional=bidirectional), num_tags=3, vocab_size=len(words))
    tag_loss = lambda p, x, n, y, tagger=tagger: tagger.loss(p, x, y, lengths=n)
    params = train(tagger.init(jax.random.key(2), 8), tag_loss, teddy_batch)
    predicted = tagger.predict(params, tokens, lengths=lengths)
    name = "bidirectional" if bidirectional else "left to right"
    first_word_accuracy[name] = float((predicted[:, 0] == tags[:, 0]).mean())
    mask = sequence_mask(lengths, tokens.shape[1])
    print(f"{name:14s} all words {float(((predicted == tags) * mask).sum() / mask.sum()):.3f}, "
          f"the word 'Teddy' {first_word_accuracy[name]:.3f}")

fig, ax = plt.subplots(figsize=(5, 2.5))
ax.bar(list(first_word_accuracy), list(first_word_accuracy.values()), color=["tab:grey", "tab:blue"])
ax.axhline(0.5, color="black", linestyle="--", linewidth=1)
ax.set(ylabel="accuracy on 'Teddy'", ylim=(0, 1.05), title="Tagging 'Teddy': the evidence comes after it")
plt.show()

# %% [markdown]
# The left-to-right tagger cannot do better than guessing on *Teddy* (about half the sentences are about the
# president); the bidirectional one gets it right because its backward pass has already read *bears* or
# *Roosevelt*. Notebook 5 turns this into a measurement: the best error any left-to-right model can reach.
#
# ## One-to-many: a sequence from one vector
#
# A decoder starts from a single vector (for image captioning, the "semantic vector" a CNN extracts from a
# picture) and generates tokens one at a time, each fed back as the next input. Here the vector is a one-hot code
# of a number n in 2..6, and the sequence to produce counts down from n to 1, then stops.

# %%
END, START, VOCAB = 1, 0, 8  # token ids: 0 start, 1 end, k + 1 stands for the number k


def countdown_batch(seed, batch=64):
    rng = np.random.default_rng(seed)
    n = rng.integers(2, 7, batch)
    vectors = np.eye(7, dtype=np.float32)[n]
    targets = np.full((batch, 7), END, np.int32)
    for row, count in enumerate(n):
        targets[row, :count] = np.arange(count, 0, -1) + 1
    return jnp.asarray(vectors), jnp.asarray(targets), jnp.asarray(n + 1)


decoder = Decoder(gru(), vocab_size=VOCAB, hidden_size=HIDDEN, embed_size=8, init_size=7, start_id=START, end_id=END)


def countdown_loss(params, vectors, targets, target_lengths):
    return decoder.loss(params, decoder.carry_from_vector(params, vectors), targets, target_lengths)


params = train(decoder.init(jax.random.key(3)), countdown_loss, countdown_batch)
vectors, targets, target_lengths = countdown_batch(TEST_SEED, 5)
generated = decoder.greedy(params, decoder.carry_from_vector(params, vectors), max_length=7)
for row in range(5):
    print("n =", int(vectors[row].argmax()), "->", [int(t) - 1 for t in generated.tokens[row] if t > END])

# %% [markdown]
# ## Sequence to sequence, with attention
#
# Translation maps a sentence to a sentence of another length. A seq2seq model has an *encoder* RNN that reads the
# source and a *decoder* that writes the target. Without attention, everything the decoder knows about the
# source must pass through the encoder's last state, one fixed-size vector (notebook 5 measures what that costs).
# With *attention* the decoder looks back at every encoder state at every step, weighting them by relevance.
#
# The task: reverse a sequence of 2 to 6 symbols.

# %%
vocab = toy_tasks.SEQ2SEQ_VOCAB
seq2seq_accuracy = {}
for attention in ("none", "bahdanau"):
    model = Seq2Seq(RNN(gru(), HIDDEN), Decoder(gru(), vocab, HIDDEN, 16, attention=attention), vocab_size=vocab)
    batches = lambda step: toy_tasks.copy_or_reverse(step, reverse=True)
    params = train(model.init(jax.random.key(4), 16), model.loss, batches)
    src, src_lengths, targets, target_lengths = toy_tasks.copy_or_reverse(TEST_SEED, 512, reverse=True)
    greedy = model.greedy(params, src, src_lengths, max_length=targets.shape[1])
    seq2seq_accuracy[attention] = float(sequence_accuracy(greedy.tokens, targets,
                                                          sequence_mask(target_lengths, targets.shape[1])))
    print(f"attention={attention:9s} whole sequences right: {seq2seq_accuracy[attention]:.3f}")
print("source", src[0, : src_lengths[0]], "-> output", greedy.tokens[0, : src_lengths[0]])

fig, ax = plt.subplots(figsize=(5, 2.5))
ax.bar(["no attention", "attention"], list(seq2seq_accuracy.values()), color=["tab:grey", "tab:blue"])
ax.set(ylabel="exact reversals", ylim=(0, 1.05), title="Seq2seq: reversing 2-6 symbols")
plt.show()

# %% [markdown]
# ## CTC: many frames, fewer labels
#
# In speech recognition the input has many more frames than the transcript has letters, and nobody tells the model
# which frame belongs to which letter. Connectionist Temporal Classification (CTC) lets the model output one
# symbol per frame, including a *blank* `-`, and defines the transcript by a **collapsing function**: merge
# repeated symbols, then drop the blanks. So `aa-b-bb` and `a--bb-b` both mean `abb`, and the loss sums over every
# frame labelling that collapses to the right transcript.
#
# The collapsing function in three lines, next to rnnjax's `greedy_decode`, which applies it to the most likely
# symbol of every frame:

# %%
def collapse(frames, blank="-"):
    merged = [symbol for t, symbol in enumerate(frames) if t == 0 or symbol != frames[t - 1]]
    return "".join(symbol for symbol in merged if symbol != blank)


alphabet = "-ab"
for frames in ["aa-b-bb", "a--bb-b", "-a-a-"]:
    logits = jnp.eye(3)[jnp.array([alphabet.index(s) for s in frames])]  # one frame = one certain symbol
    tokens, length = greedy_decode(logits)
    print(f"{frames} -> {collapse(frames)!r}; rnnjax: {''.join(alphabet[int(t)] for t in tokens[: int(length)])!r}")

# %% [markdown]
# Now a bidirectional tagger trained with `ctc_loss` on noisy runs of symbols: each label is shown for one to
# three frames, then a blank frame.

# %%
model = Tagger(RNN(gru(), HIDDEN, bidirectional=True), num_tags=4)
ctc_objective = lambda p, x, n, y, m: ctc_loss(model.apply(p, x, lengths=n), n, y, m)
params = train(model.init(jax.random.key(5), 4), ctc_objective, toy_tasks.ctc_runs)
frames, frame_lengths, labels, label_lengths = toy_tasks.ctc_runs(TEST_SEED, 256)
logits = model.apply(params, frames, lengths=frame_lengths)
decoded, decoded_lengths = greedy_decode(logits, frame_lengths)
exact = [list(a) == list(b) for a, b in zip(trim(labels, label_lengths), trim(decoded, decoded_lengths))]
print(f"transcripts exactly right: {np.mean(exact):.3f}")

n = int(frame_lengths[0])
fig, axes = plt.subplots(2, 1, figsize=(7, 3.5), sharex=True)
axes[0].imshow(frames[0, :n].T, aspect="auto", cmap="Greys")
axes[0].set(ylabel="input", title=f"CTC: labels {labels[0, : int(label_lengths[0])].tolist()}, "
                                  f"decoded {decoded[0, : int(decoded_lengths[0])].tolist()}")
axes[1].imshow(jax.nn.softmax(logits[0, :n]).T, aspect="auto", cmap="Blues", vmin=0, vmax=1)
axes[1].set(xlabel="frame", ylabel="P(symbol)\n(row 0: blank)")
plt.show()

# %% [markdown]
# ## What to keep
#
# | task type | lengths | rnnjax |
# |---|---|---|
# | many-to-one | T inputs, 1 output | `ManyToOne` (last state, mean or max pooling) |
# | one-to-many | 1 vector, M outputs | `Decoder` with `init_size`, `carry_from_vector`, `greedy`/`sample` |
# | tagging | T inputs, T outputs | `Tagger`, bidirectional when the evidence follows |
# | seq2seq | T inputs, M outputs | `Seq2Seq` (encoder + `Decoder`, attention, beam search) |
# | CTC | T frames, fewer labels | `ctc_loss`, `greedy_decode`, prefix beam search |
#
# Each model here is one seed on toy data: an illustration. The experiments under `experiments/` train the same
# heads on real data with several seeds and intervals ([results](../../guides/results/)).
#
# Next: [5. The universal-approximation question](../05_universal_approximation/).
