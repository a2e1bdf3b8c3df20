"""Build the example gallery through the GraphDocument API and save it as JSON.

    python scripts/make_examples.py            # writes resources/examples/*.json

Every example is built node by node with readable ids, laid out left to right by
topological generation (x = 220 * generation, nodes of one generation 140 apart), and
carries a name and a description for the gallery. The ``training`` section is left
empty: the training configuration is added separately.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime import GraphDocument, save_graph, validate  # noqa: E402
from runtime.topology import feedforward_graph  # noqa: E402
from runtime.training.presets import example_training  # noqa: E402

OUT_DIR = ROOT / "resources" / "examples"
X_STEP = 220.0  # horizontal distance between generations
Y_STEP = 140.0  # vertical distance between nodes of one generation



class Builder:
    """A thin helper over GraphDocument: add a node and wire its inputs in one call."""

    def __init__(self, name: str, description: str):
        self.doc = GraphDocument(name)
        self.doc.set_metadata({"name": name, "description": description})

    def add(self, node_id: str, type_id: str, params: dict[str, Any] | None = None, *,
            inputs: tuple = (), label: str = "") -> str:
        """Add a node; ``inputs`` feed its input ports in port order."""
        node = self.doc.add_node(type_id, params, node_id=node_id, label=label)
        ports = node.input_ports()
        if len(inputs) > len(ports):
            raise ValueError(f"{node_id}: {len(inputs)} inputs for {len(ports)} ports")
        for port, src in zip(ports, inputs):
            src_id, src_port = src if isinstance(src, tuple) else (
                src, self.doc.node(src).output_ports()[0].name)
            self.doc.connect(src_id, src_port, node_id, port.name)
        return node_id

    def chain(self, src: str, *layers: tuple) -> str:
        """Add layers one after the other from ``src``: each (id, type[, params[, label]])."""
        for layer in layers:
            node_id, type_id = layer[0], layer[1]
            params = layer[2] if len(layer) > 2 else None
            label = layer[3] if len(layer) > 3 else ""
            src = self.add(node_id, type_id, params, inputs=(src,), label=label)
        return src

    def classifier_loss(self, logits: str, num_classes: int, shape: list[int] | None = None) -> None:
        """Target (class ids) and a softmax cross-entropy loss on ``logits``."""
        self.add("label", "Target", {"kind": "class", "shape": shape or [],
                                     "num_classes": num_classes}, label="class label")
        self.add("loss", "CrossEntropy", inputs=(logits, "label"))

    def finish(self) -> GraphDocument:
        layout(self.doc)
        return self.doc


def layout(doc: GraphDocument) -> None:
    """Left-to-right layered layout from networkx topological generations.

    A Target node sits one column left of the loss it feeds, below the other nodes of
    that column. An edge that spans several columns gets a placeholder in each column it
    crosses (as in Sugiyama layouts), so skip connections run beside the nodes they skip
    instead of through them. Inside a column a node wants the mean height of its inputs;
    overlaps are pushed apart to Y_STEP and the column is re-centred on the wanted heights.
    """
    g = feedforward_graph(doc)
    gen: dict[str, int] = {}
    for i, nodes in enumerate(nx.topological_generations(g)):
        for n in nodes:
            gen[n] = i
    targets = {n.id for n in doc if n.spec.source_kind == "target"}
    for t in targets:
        succ = list(g.successors(t))
        if succ:
            gen[t] = max(0, min(gen[s] for s in succ) - 1)
    order: dict[str, float] = {nid: i for i, nid in enumerate(doc.nodes)}  # breaks ties
    h = nx.DiGraph()  # g with every long edge cut into one-column pieces
    h.add_nodes_from(g)
    for u, v in g.edges:
        prev = u
        for col in range(gen[u] + 1, gen[v]):
            dummy = f"{u}->{v}@{col}"
            gen[dummy], order[dummy] = col, order[u] + 0.5
            h.add_edge(prev, dummy)
            prev = dummy
        h.add_edge(prev, v)
    y: dict[str, float] = {}
    for col in range(max(gen.values(), default=-1) + 1):
        members = sorted((n for n in gen if gen[n] == col), key=order.__getitem__)
        main = [n for n in members if n not in targets]
        want = {n: _mean([y[p] for p in h.predecessors(n) if p in y], 0.0) for n in main}
        main.sort(key=lambda n: (want[n], order[n]))
        ys: list[float] = []
        for n in main:
            ys.append(want[n] if not ys else max(want[n], ys[-1] + Y_STEP))
        if ys:
            shift = _mean([want[n] for n in main], 0.0) - _mean(ys, 0.0)
            ys = [v + shift for v in ys]
        for n, v in zip(main, ys):
            y[n] = v
        bottom = max(ys) if ys else -Y_STEP
        for n in members:
            if n in targets:
                bottom += Y_STEP
                y[n] = bottom
    for nid in doc.nodes:
        doc.move_node(nid, (X_STEP * gen[nid], round(y[nid], 1) + 0.0))


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


# ---- the examples ------------------------------------------------------------------------


def mlp_spirals() -> GraphDocument:
    b = Builder(
        "MLP on two spirals",
        "A multi-layer perceptron that separates two interleaved spirals in the plane: "
        "2 inputs, two hidden layers of 32 units (tanh, then ReLU) and 2 class scores. "
        "No straight line separates the spirals; the hidden layers bend the input space "
        "until one does.")
    b.add("point", "VectorInput", {"features": 2}, label="(x, y) point")
    logits = b.chain("point",
                     ("hidden1", "Dense", {"units": 32}),
                     ("tanh1", "Tanh"),
                     ("hidden2", "Dense", {"units": 32}),
                     ("relu2", "ReLU"),
                     ("logits", "Dense", {"units": 2}, "class scores"))
    b.classifier_loss(logits, 2)
    return b.finish()


def lenet5() -> GraphDocument:
    b = Builder(
        "LeNet-5",
        "LeCun et al.'s LeNet-5 (1998) for 32x32 digits, with the paper's layer names and "
        "exact parameter counts: C1 (156), S2 trainable sub-sampling (12), C3 with its "
        "sparse connection table (1,516), S4 (32), C5 (48,120), F6 (10,164) and 10 RBF "
        "output units (840), 60,840 in all. As in the paper every layer up to F6 is "
        "followed by a squashing function (plain tanh here instead of 1.7159 tanh(2a/3)); "
        "the RBF units output squared distances, so they are negated (Scale -1) to become "
        "class scores for the softmax cross-entropy.")
    b.add("image", "ImageInput", {"channels": 1, "height": 32, "width": 32}, label="32x32 image")
    logits = b.chain(
        "image",
        ("C1", "Conv2d", {"filters": 6, "kernel_size": 5}, "C1"),
        ("tanh_C1", "Tanh"),
        ("S2", "Subsample2d", {"kernel_size": 2}, "S2"),
        ("tanh_S2", "Tanh"),
        ("C3", "TableConv2d", {"table": [], "kernel_size": 5}, "C3"),
        ("tanh_C3", "Tanh"),
        ("S4", "Subsample2d", {"kernel_size": 2}, "S4"),
        ("tanh_S4", "Tanh"),
        ("C5", "Conv2d", {"filters": 120, "kernel_size": 5}, "C5"),
        ("tanh_C5", "Tanh"),
        ("flatten", "Flatten"),
        ("F6", "Dense", {"units": 84}, "F6"),
        ("tanh_F6", "Tanh"),
        # 'output' is a reserved id (it would shadow generated code); the label keeps the name
        ("out", "RBF", {"units": 10}, "output"),
        ("scores", "Scale", {"scale": -1.0, "shift": 0.0, "learnable": False},
         "negated distances"),
    )
    b.classifier_loss(logits, 10)
    return b.finish()


def _conv(filters: int, kernel: int = 3, padding: int = 1, stride: int = 1,
          bias: bool = True) -> dict[str, Any]:
    return {"filters": filters, "kernel_size": kernel, "padding": padding, "stride": stride,
            "bias": bias}


def vgg_small() -> GraphDocument:
    b = Builder(
        "Small VGG",
        "A small VGG-style network for 32x32 colour images (CIFAR-10 sized): two blocks of "
        "two 3x3 convolutions (padding 1 keeps the size) each followed by batch "
        "normalisation and ReLU, then 2x2 max pooling that halves the size. Stacked 3x3 "
        "filters see as far as one larger filter with fewer weights; dropout regularises "
        "the fully connected classifier.")
    b.add("image", "ImageInput", {"channels": 3, "height": 32, "width": 32}, label="RGB image")
    x = "image"
    for blk, filters in ((1, 32), (2, 64)):
        for i in (1, 2):
            x = b.chain(x,
                        (f"conv{blk}_{i}", "Conv2d", _conv(filters)),
                        (f"bn{blk}_{i}", "BatchNorm"),
                        (f"relu{blk}_{i}", "ReLU"))
        x = b.chain(x, (f"pool{blk}", "MaxPool", {"kernel_size": 2}))
    logits = b.chain(x,
                     ("flatten", "Flatten"),
                     ("fc1", "Dense", {"units": 128}),
                     ("relu_fc1", "ReLU"),
                     ("dropout", "Dropout", {"p": 0.5}),
                     ("logits", "Dense", {"units": 10}, "class scores"))
    b.classifier_loss(logits, 10)
    return b.finish()


def resnet_small() -> GraphDocument:
    b = Builder(
        "Small ResNet",
        "A small residual network: each block computes F(x) with two 3x3 convolutions and "
        "adds its input back, y = relu(F(x) + x), so gradients flow through the skip "
        "connections unchanged. Where the block halves the size and doubles the channels "
        "the skip is a projection (1x1 convolution, stride 2); global average pooling and "
        "one fully connected layer classify.")
    b.add("image", "ImageInput", {"channels": 3, "height": 32, "width": 32}, label="RGB image")
    stem = b.chain("image",
                   ("stem_conv", "Conv2d", _conv(16, bias=False)),
                   ("stem_bn", "BatchNorm"),
                   ("stem_relu", "ReLU"))

    def block(name: str, x: str, filters: int, stride: int) -> str:
        main = b.chain(x,
                       (f"{name}_conv1", "Conv2d", _conv(filters, stride=stride, bias=False)),
                       (f"{name}_bn1", "BatchNorm"),
                       (f"{name}_relu1", "ReLU"),
                       (f"{name}_conv2", "Conv2d", _conv(filters, bias=False)),
                       (f"{name}_bn2", "BatchNorm"))
        skip = x
        if stride != 1:
            skip = b.chain(x,
                           (f"{name}_proj", "Conv2d", _conv(filters, 1, 0, stride, False),
                            "projection 1x1/2"),
                           (f"{name}_proj_bn", "BatchNorm"))
        b.add(f"{name}_add", "Add", {"inputs": 2}, inputs=(main, skip), label=f"{name} + skip")
        return b.chain(f"{name}_add", (f"{name}_relu2", "ReLU"))

    x = block("res1", stem, 16, 1)
    x = block("res2", x, 32, 2)
    x = block("res3", x, 32, 1)
    logits = b.chain(x,
                     ("gap", "GlobalAvgPool"),
                     ("logits", "Dense", {"units": 10}, "class scores"))
    b.classifier_loss(logits, 10)
    return b.finish()


def inception_small() -> GraphDocument:
    b = Builder(
        "Small Inception",
        "Two Inception modules: four parallel branches (a 1x1 convolution, a 1x1 'reduce' "
        "then 3x3, a 1x1 reduce then 5x5, and 3x3 max pooling with stride 1 then 1x1) "
        "whose feature maps are concatenated along the channels. The cheap 1x1 reductions "
        "keep the large filters affordable.")
    b.add("image", "ImageInput", {"channels": 3, "height": 32, "width": 32}, label="RGB image")
    x = b.chain("image",
                ("stem_conv", "Conv2d", _conv(32)),
                ("stem_relu", "ReLU"),
                ("stem_pool", "MaxPool", {"kernel_size": 2}))

    def module(name: str, x: str, c1: int, r3: int, c3: int, r5: int, c5: int, cp: int) -> str:
        b1 = b.chain(x, (f"{name}_1x1", "Conv2d", _conv(c1, 1, 0), "1x1"),
                     (f"{name}_1x1_relu", "ReLU"))
        b2 = b.chain(x, (f"{name}_3x3_reduce", "Conv2d", _conv(r3, 1, 0), "1x1 reduce"),
                     (f"{name}_3x3_reduce_relu", "ReLU"),
                     (f"{name}_3x3", "Conv2d", _conv(c3, 3, 1), "3x3"),
                     (f"{name}_3x3_relu", "ReLU"))
        b3 = b.chain(x, (f"{name}_5x5_reduce", "Conv2d", _conv(r5, 1, 0), "1x1 reduce"),
                     (f"{name}_5x5_reduce_relu", "ReLU"),
                     (f"{name}_5x5", "Conv2d", _conv(c5, 5, 2), "5x5"),
                     (f"{name}_5x5_relu", "ReLU"))
        b4 = b.chain(x, (f"{name}_pool", "MaxPool",
                         {"kernel_size": 3, "stride": 1, "padding": 1}, "3x3 max pool"),
                     (f"{name}_pool_proj", "Conv2d", _conv(cp, 1, 0), "1x1 projection"),
                     (f"{name}_pool_proj_relu", "ReLU"))
        return b.add(f"{name}_concat", "Concat", {"inputs": 4, "axis": 0},
                     inputs=(b1, b2, b3, b4), label=f"{name} concat")

    x = module("inc1", x, 16, 16, 24, 4, 8, 8)  # 56 channels
    x = module("inc2", x, 24, 24, 32, 8, 16, 16)  # 88 channels
    logits = b.chain(x,
                     ("gap", "GlobalAvgPool"),
                     ("logits", "Dense", {"units": 10}, "class scores"))
    b.classifier_loss(logits, 10)
    return b.finish()


def text_cnn() -> GraphDocument:
    b = Builder(
        "Text CNN",
        "A 1-D convolutional sentence classifier: each of 40 token ids becomes a 32-d word "
        "vector; after transposing to (channels, time), filters spanning 2, 3 and 4 "
        "consecutive words (bigrams, trigrams, 4-grams) slide along the text, global max "
        "pooling keeps each filter's strongest match anywhere, and the concatenated "
        "features feed a classifier.")
    b.add("tokens", "TokenInput", {"steps": 40, "vocab_size": 1000}, label="token ids")
    x = b.chain("tokens",
                ("embed", "Embedding", {"num_embeddings": 1000, "dim": 32}, "word vectors"),
                ("to_channels", "Transpose", {"axis1": 0, "axis2": 1}, "(T, D) -> (D, T)"))
    pooled = []
    for width in (2, 3, 4):
        pooled.append(b.chain(
            x,
            (f"conv_w{width}", "Conv1d", {"filters": 16, "kernel_size": width},
             f"{width}-word filters"),
            (f"relu_w{width}", "ReLU"),
            (f"maxpool_w{width}", "GlobalMaxPool", None, "max over time")))
    b.add("features", "Concat", {"inputs": 3, "axis": 0}, inputs=tuple(pooled))
    logits = b.chain("features",
                     ("dropout", "Dropout", {"p": 0.5}),
                     ("logits", "Dense", {"units": 2}, "class scores"))
    b.classifier_loss(logits, 2)
    return b.finish()


def triplet_embedding() -> GraphDocument:
    b = Builder(
        "Triplet embedding",
        "Learns an 8-d embedding with the triplet loss: each sample stacks an anchor, a "
        "positive (same class) and a negative (other class) as 3 rows of 16 features. "
        "A fully connected layer acts on the last axis, so the same weights embed all three "
        "rows (a siamese network with shared weights); Split separates the embeddings and "
        "the loss pulls the positive closer to the anchor than the negative by the margin.")
    b.add("triplet", "SequenceInput", {"steps": 3, "features": 16},
          label="(anchor, positive, negative)")
    emb = b.chain("triplet",
                  ("hidden", "Dense", {"units": 32}, "shared hidden"),
                  ("relu", "ReLU"),
                  ("embed", "Dense", {"units": 8}, "shared embedding"))
    b.add("split", "Split", {"parts": 3, "axis": 0}, inputs=(emb,))
    b.add("embedding", "Output", inputs=(emb,), label="embeddings")
    b.add("loss", "TripletLoss", {"margin": 1.0},
          inputs=(("split", "out1"), ("split", "out2"), ("split", "out3")))
    return b.finish()


def digits_cnn() -> GraphDocument:
    b = Builder(
        "Digits CNN",
        "A LeNet-style convolutional network for the 8x8 handwritten digits of scikit-learn: "
        "two rounds of 3x3 convolution, ReLU and 2x2 max pooling (8x8 -> 4x4 -> 2x2) turn "
        "the image into 32 feature maps, and two fully connected layers pick one of the "
        "10 digits.")
    b.add("image", "ImageInput", {"channels": 1, "height": 8, "width": 8}, label="8x8 digit")
    logits = b.chain("image",
                     ("conv1", "Conv2d", _conv(16)),
                     ("relu1", "ReLU"),
                     ("pool1", "MaxPool", {"kernel_size": 2}),
                     ("conv2", "Conv2d", _conv(32)),
                     ("relu2", "ReLU"),
                     ("pool2", "MaxPool", {"kernel_size": 2}),
                     ("flatten", "Flatten"),
                     ("fc1", "Dense", {"units": 64}),
                     ("relu3", "ReLU"),
                     ("logits", "Dense", {"units": 10}, "digit scores"))
    b.classifier_loss(logits, 10)
    return b.finish()


DEEP_LAYERS = 8  # hidden layers of the deep MLP twins
DEEP_UNITS = 64


def deep_sigmoid_mlp() -> GraphDocument:
    b = Builder(
        "Deep sigmoid MLP (vanishing gradients)",
        f"{DEEP_LAYERS} hidden layers of {DEEP_UNITS} sigmoid units on the 8x8 digits "
        "(flattened to 64 features). The sigmoid's derivative is at most 1/4, so the "
        "gradient shrinks layer by layer on its way back: the first layers barely learn. "
        "Train it with the health read-outs on (View > Show Training State) and compare "
        "it with deep_relu_bn_mlp, its ReLU + batch-norm twin.")
    b.add("digit", "VectorInput", {"features": 64}, label="8x8 digit, flattened")
    x = "digit"
    for i in range(1, DEEP_LAYERS + 1):
        x = b.chain(x, (f"dense{i}", "Dense", {"units": DEEP_UNITS}),
                    (f"sigmoid{i}", "Sigmoid"))
    logits = b.chain(x, ("logits", "Dense", {"units": 10}, "digit scores"))
    b.classifier_loss(logits, 10)
    return b.finish()


def deep_relu_bn_mlp() -> GraphDocument:
    b = Builder(
        "Deep ReLU + batch-norm MLP",
        f"The twin of deep_sigmoid_mlp: {DEEP_LAYERS} hidden layers of {DEEP_UNITS} units, "
        "each Dense (He initialisation) -> batch normalisation -> ReLU. ReLU passes the "
        "gradient unchanged where a unit is active and batch normalisation keeps every "
        "layer's input centred and scaled, so the first layers learn as fast as the last.")
    b.add("digit", "VectorInput", {"features": 64}, label="8x8 digit, flattened")
    x = "digit"
    for i in range(1, DEEP_LAYERS + 1):
        x = b.chain(x, (f"dense{i}", "Dense", {"units": DEEP_UNITS, "init": "kaiming_normal"}),
                    (f"bn{i}", "BatchNorm"), (f"relu{i}", "ReLU"))
    logits = b.chain(x, ("logits", "Dense", {"units": 10}, "digit scores"))
    b.classifier_loss(logits, 10)
    return b.finish()


EXAMPLES: dict[str, Callable[[], GraphDocument]] = {
    "mlp_spirals": mlp_spirals,
    "lenet5": lenet5,
    "vgg_small": vgg_small,
    "resnet_small": resnet_small,
    "inception_small": inception_small,
    "text_cnn": text_cnn,
    "triplet_embedding": triplet_embedding,
    "digits_cnn": digits_cnn,
    "deep_sigmoid_mlp": deep_sigmoid_mlp,
    "deep_relu_bn_mlp": deep_relu_bn_mlp,
}


def main(out_dir: Path = OUT_DIR) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = False
    for stem, make in EXAMPLES.items():
        doc = make()
        if example_training(stem):  # the training section (runtime/training/presets.py)
            doc.set_training(example_training(stem))
        diags = validate(doc)
        for d in diags:
            print(f"{stem}: {d}", file=sys.stderr)
        failed |= bool(diags)
        path = out_dir / f"{stem}.json"
        save_graph(doc, path)
        print(f"wrote {path.relative_to(ROOT)} ({len(doc)} nodes, {len(doc.edges)} edges)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
