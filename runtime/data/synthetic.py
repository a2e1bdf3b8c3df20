"""Built-in synthetic datasets: small problems that teach one idea each.

Every generator takes ``n`` (samples), ``seed`` and its own knobs, and returns a
:class:`Dataset`. Sequence sets take ``steps`` (T), by default the graph's sequence length.
"""
from __future__ import annotations

import numpy as np

from .dataset import DataError, Dataset


def _cls(name, x, y, k, **meta):
    return Dataset(name, [x.astype(np.float32)], [y.astype(np.int64)], "classification", k,
                   meta=meta)


def xor(n: int = 400, noise: float = 0.15, seed: int = 0) -> Dataset:
    """Four clusters at (+-1, +-1); the class is the XOR of the signs (not linearly separable)."""
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, 2, size=(n, 2))
    x = (corners * 2 - 1) + rng.normal(0, noise, (n, 2))
    return _cls("xor", x, corners[:, 0] ^ corners[:, 1], 2)


def spirals(n: int = 1000, noise: float = 0.05, turns: float = 1.5, seed: int = 0) -> Dataset:
    """Two interleaved spirals (Lang & Witbrock): r grows with the angle, class 1 is class 0
    rotated by pi."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.sqrt(rng.uniform(0.02, 1.0, n)) * turns * 2 * np.pi  # denser near the centre
    r = t / (turns * 2 * np.pi)
    a = t + np.pi * y
    x = np.stack([r * np.cos(a), r * np.sin(a)], 1) + rng.normal(0, noise * r[:, None], (n, 2))
    return _cls("spirals", x * 2, y, 2)


def moons(n: int = 500, noise: float = 0.1, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = rng.uniform(0, np.pi, n)
    x = np.where(y[:, None] == 0, np.stack([np.cos(t), np.sin(t)], 1),
                 np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1))
    return _cls("moons", x + rng.normal(0, noise, (n, 2)), y, 2)


def circles(n: int = 500, noise: float = 0.05, factor: float = 0.5, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = rng.uniform(0, 2 * np.pi, n)
    r = np.where(y == 0, 1.0, factor)
    x = np.stack([r * np.cos(t), r * np.sin(t)], 1) + rng.normal(0, noise, (n, 2))
    return _cls("circles", x, y, 2)


def blobs(n: int = 600, classes: int = 3, features: int = 2, spread: float = 1.0,
          seed: int = 0) -> Dataset:
    """Gaussian blobs around random centres in [-5, 5]^D."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-5, 5, (classes, features))
    y = np.arange(n) % classes
    return _cls("blobs", centres[y] + rng.normal(0, spread, (n, features)), y, classes)


def regression(n: int = 400, noise: float = 0.1, seed: int = 0) -> Dataset:
    """1-D regression: t = sin(3x) + 0.5x + noise, x in [-2, 2]. Input (1), target (1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (n, 1))
    t = np.sin(3 * x) + 0.5 * x + rng.normal(0, noise, (n, 1))
    return Dataset("regression", [x.astype(np.float32)], [t.astype(np.float32)], "regression")


def adding(n: int = 2000, steps: int = 50, seed: int = 0) -> Dataset:
    """The adding problem (Hochreiter & Schmidhuber): each step holds (value, marker); the
    target is the sum of the two marked values. Input (T, 2), target (1). Long T needs memory."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 1, (n, steps))
    marks = np.zeros((n, steps))
    half = max(1, steps // 2)
    i = rng.integers(0, half, n)
    j = rng.integers(half, steps, n) if steps > 1 else i
    marks[np.arange(n), i] = 1
    marks[np.arange(n), j] = 1
    x = np.stack([values, marks], 2)
    t = (values * marks).sum(1, keepdims=True)
    return Dataset("adding", [x.astype(np.float32)], [t.astype(np.float32)], "regression")


def copy_task(n: int = 2000, length: int = 5, symbols: int = 8, steps: int | None = None,
              seed: int = 0) -> Dataset:
    """The copy task: remember ``length`` symbols, wait, then reproduce them after a
    delimiter. Tokens: 0 blank, 1..symbols data, symbols+1 delimiter (vocabulary symbols+2).
    Input (T) token ids, target (T) class ids, T = steps (default 2*length + 10)."""
    rng = np.random.default_rng(seed)
    steps = steps or 2 * length + 10
    length = min(length, max(1, (steps - 1) // 2))
    delay = steps - 2 * length
    data = rng.integers(1, symbols + 1, (n, length))
    x = np.zeros((n, steps), np.int64)
    y = np.zeros((n, steps), np.int64)
    x[:, :length] = data
    x[:, length + delay - 1] = symbols + 1
    y[:, steps - length:] = data
    ds = Dataset("copy", [x], [y], "sequence", symbols + 2)
    ds.vocab = ["_"] + [chr(ord("a") + i) for i in range(symbols)] + ["|"]
    return ds


def sine(n: int = 1000, steps: int = 50, noise: float = 0.05, seed: int = 0) -> Dataset:
    """Noisy sine sequences with random frequency and phase; predict the next value at each
    step. Input (T, 1), target (T, 1)."""
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.05, 0.2, (n, 1))
    ph = rng.uniform(0, 2 * np.pi, (n, 1))
    t = np.arange(steps + 1)[None, :]
    s = np.sin(2 * np.pi * f * t + ph)
    x = s[:, :-1] + rng.normal(0, noise, (n, steps))
    return Dataset("sine", [x[..., None].astype(np.float32)],
                   [s[:, 1:, None].astype(np.float32)], "regression")


def tagging(n: int = 2000, steps: int = 40, vocab: int = 1000, classes: int = 12,
            seed: int = 0) -> Dataset:
    """Sequence tagging (part-of-speech style): a fixed random lexicon gives every token id
    one of ``classes`` tags; the target of each position is its token's tag. Input (T)
    token ids in 1..vocab-1 (0 is padding), target (T) class ids."""
    if vocab < 2 or classes < 1:
        raise DataError(f"tagging needs vocab >= 2 and classes >= 1, got {vocab} and {classes}")
    rng = np.random.default_rng(seed)
    lexicon = rng.integers(0, classes, vocab)
    x = rng.integers(1, vocab, (n, steps))
    return Dataset("tagging", [x.astype(np.int64)], [lexicon[x].astype(np.int64)], "sequence",
                   classes)


def keywords(n: int = 2000, steps: int = 40, vocab: int = 1000, classes: int = 2,
             per_class: int = 10, seed: int = 0) -> Dataset:
    """Token sequences classified by the keywords they contain (a stand-in for sentiment
    or topic classification): each class owns ``per_class`` token ids; a sequence is filler
    tokens with one to three keywords of its class at random places. Input (T) token ids,
    target: the class."""
    first_filler = 1 + classes * per_class
    if vocab <= first_filler or steps < 3:
        raise DataError(f"keywords needs vocab > {first_filler} (classes x per_class + 1) and "
                        f"steps >= 3, got vocab {vocab} and steps {steps}")
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.integers(first_filler, vocab, (n, steps))
    for i in range(n):
        k = rng.integers(1, 4)
        where = rng.choice(steps, k, replace=False)
        x[i, where] = 1 + y[i] * per_class + rng.integers(0, per_class, k)
    return _cls_tokens("keywords", x, y, classes)


def _cls_tokens(name, x, y, k):
    return Dataset(name, [x.astype(np.int64)], [y.astype(np.int64)], "classification", k)


def waves(n: int = 1000, steps: int = 32, features: int = 8, classes: int = 4,
          noise: float = 0.3, seed: int = 0) -> Dataset:
    """Multichannel sequence classification: class k is a sine wave of (k + 1) * 1.5 cycles
    over the sequence on every channel, with random phase and amplitude per channel, plus
    noise. Input (T, features), target: the class."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    cycles = (y + 1) * 1.5
    t = np.arange(steps)[None, :, None] / steps
    phase = rng.uniform(0, 2 * np.pi, (n, 1, features))
    amp = rng.uniform(0.5, 1.5, (n, 1, features))
    x = amp * np.sin(2 * np.pi * cycles[:, None, None] * t + phase)
    return _cls("waves", x + rng.normal(0, noise, x.shape), y, classes)


def reverse(n: int = 2000, steps: int = 20, out_steps: int = 24, vocab: int = 100,
            out_vocab: int = 120, seed: int = 0) -> Dataset:
    """Sequence to sequence: reverse a token sequence (as Sutskever et al. 2014 reversed
    their sources). Source (``steps``): 5..steps ids in 1..vocab-1, then padding 0. Target
    (``out_steps``): the source reversed (ids shifted by 2), an end token 2, then padding
    0. Previous (``out_steps``): the target behind a start token 1 (teacher forcing).
    Inputs: source, previous; target: the target's class ids."""
    if out_steps < steps + 1 or out_vocab < vocab + 2:
        raise DataError(f"reverse needs out_steps >= steps + 1 and out_vocab >= vocab + 2, "
                        f"got steps {steps}, out_steps {out_steps}, vocab {vocab}, "
                        f"out_vocab {out_vocab}")
    rng = np.random.default_rng(seed)
    src = np.zeros((n, steps), np.int64)
    tgt = np.zeros((n, out_steps), np.int64)
    lengths = rng.integers(min(5, steps), steps + 1, n)
    for i, length in enumerate(lengths):
        tokens = rng.integers(1, vocab, length)
        src[i, :length] = tokens
        tgt[i, :length] = tokens[::-1] + 2
        tgt[i, length] = 2  # end
    prev = np.concatenate([np.ones((n, 1), np.int64), tgt[:, :-1]], 1)  # start token 1
    return Dataset("reverse", [src, prev], [tgt], "sequence", out_vocab)


def triplets(n: int = 1000, features: int = 16, clusters: int = 8, spread: float = 0.5,
             seed: int = 0) -> Dataset:
    """Triplets for metric learning (a triplet loss): (anchor, positive, negative) per
    sample; anchor and positive come from one Gaussian cluster, the negative from another.
    Input (3, features); no target."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (clusters, features))
    a = rng.integers(0, clusters, n)
    b = (a + rng.integers(1, clusters, n)) % clusters
    pick = lambda c: centres[c] + rng.normal(0, spread, (n, features))  # noqa: E731
    x = np.stack([pick(a), pick(a), pick(b)], 1)
    return Dataset("triplets", [x.astype(np.float32)], [], "embedding",
                   meta={"cluster": a})


BUILTIN = {"xor": xor, "spirals": spirals, "moons": moons, "circles": circles, "blobs": blobs,
           "regression": regression, "adding": adding, "copy": copy_task, "sine": sine,
           "tagging": tagging, "keywords": keywords, "waves": waves, "reverse": reverse,
           "triplets": triplets}
SEQUENCE_SETS = {"adding", "copy", "sine", "tagging", "keywords", "waves"}
# Options a built-in set takes from the graph when the spec does not give them
# (runtime.data.spec.graph_hints): option -> hint.
HINTED = {"adding": {"steps": "steps"}, "copy": {"steps": "steps"}, "sine": {"steps": "steps"},
          "tagging": {"steps": "steps", "vocab": "vocab_size", "classes": "classes"},
          "keywords": {"steps": "steps", "vocab": "vocab_size", "classes": "classes"},
          "waves": {"steps": "steps", "features": "features", "classes": "classes"},
          "reverse": {"steps": "steps", "vocab": "vocab_size", "out_steps": "out_steps",
                      "out_vocab": "out_vocab"},
          "triplets": {"features": "features"}}
