"""Source and sink nodes: inputs, targets for losses, named outputs."""
from __future__ import annotations

from . import register
from .spec import ANY, FLOAT, INDEX, LayerSpec, Param, Port

CAT = "Inputs & outputs"

# Longest sequence an input declares: a million steps per sample is past any network
# drawn here (analysis cost does not depend on it; data and training time do).
MAX_STEPS = 1_000_000

register(
    LayerSpec(
        type="VectorInput", title="Vector input", category=CAT,
        doc="A feature vector per sample: shape (D).",
        inputs=(), outputs=(Port("out", FLOAT),),
        params=(Param("features", "int", 2, "number of features D", min=1),),
        source_shape=lambda p: (p["features"],), source_kind="input",
    ),
    LayerSpec(
        type="ImageInput", title="Image input", category=CAT,
        doc="An image per sample: shape (C, H, W), e.g. 1x28x28 grey digits or 3x32x32 RGB.",
        inputs=(), outputs=(Port("out", FLOAT),),
        params=(
            Param("channels", "int", 1, "colour channels C (1 grey, 3 RGB)", min=1),
            Param("height", "int", 28, "height H in pixels", min=1),
            Param("width", "int", 28, "width W in pixels", min=1),
        ),
        source_shape=lambda p: (p["channels"], p["height"], p["width"]), source_kind="input",
    ),
    LayerSpec(
        type="SequenceInput", title="Sequence input", category=CAT,
        doc="A sequence of feature vectors per sample: shape (T, D). T may vary at run time.",
        inputs=(), outputs=(Port("out", FLOAT),),
        params=(
            Param("steps", "int", 16, "sequence length T used for analysis", min=1,
                  max=MAX_STEPS),
            Param("features", "int", 1, "features per step D", min=1),
        ),
        source_shape=lambda p: (p["steps"], p["features"]), source_kind="input",
    ),
    LayerSpec(
        type="TokenInput", title="Token-id sequence input", category=CAT,
        doc="A sequence of integer token ids per sample: shape (T), values in [0, vocab_size). "
            "Feed it to an Embedding or a One-hot node (1-of-k coding).",
        inputs=(), outputs=(Port("out", INDEX),),
        params=(
            Param("steps", "int", 32, "sequence length T used for analysis", min=1,
                  max=MAX_STEPS),
            Param("vocab_size", "int", 64, "number of distinct tokens", min=1),
        ),
        source_shape=lambda p: (p["steps"],), source_kind="input",
    ),
    LayerSpec(
        type="Target", title="Target", category=CAT,
        doc="The labels a loss compares against, given with each training sample. "
            "kind=class: integer class ids of the given shape (() for one label per sample); "
            "kind=value: real values of the given shape.",
        inputs=(),
        outputs=lambda p: (Port("out", INDEX if p["kind"] == "class" else FLOAT),),
        params=(
            Param("kind", "choice", "class", "class ids or real values", choices=("class", "value")),
            Param("shape", "ints", [], "per-sample shape; [] for one value per sample", min=1),
            Param("num_classes", "int", 10, "number of classes (kind=class)", min=1),
        ),
        source_shape=lambda p: tuple(p["shape"]), source_kind="target",
    ),
    LayerSpec(
        type="Output", title="Output", category=CAT,
        doc="Marks a tensor as a model output, named after this node. Exports return it.",
        inputs=(Port("x", ANY),), outputs=(), is_output=True,
    ),
)
