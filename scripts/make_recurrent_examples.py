"""Build the recurrent examples through the GraphDocument API and save them as JSON.

    python scripts/make_recurrent_examples.py     # writes resources/examples/<name>.json

Layout: left to right by topological generation of the graph with each Delay's incoming
edge cut (so a Delay stands at the left of its cell, where h_{t-1} enters, and only the
feedback edge into it runs right to left). The ``training`` section is left empty.
"""
from __future__ import annotations

import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime import GraphDocument, save_graph, validate  # noqa: E402
from runtime.cells import add_gru_cell, add_lstm_cell  # noqa: E402
from runtime.training.presets import example_training  # noqa: E402

OUT_DIR = ROOT / "resources" / "examples"
X_STEP, Y_STEP = 200.0, 120.0


def new(name: str, description: str) -> GraphDocument:
    doc = GraphDocument(name)
    doc.set_metadata({"name": name, "description": description})
    return doc


def chain(doc: GraphDocument, src, *layers) -> str:
    """Add (id, type, params[, label]) layers one after another from ``src`` (id or
    (id, port)); returns the last id."""
    for layer in layers:
        nid, type_id, params = layer[:3]
        label = layer[3] if len(layer) > 3 else ""
        node = doc.add_node(type_id, params, node_id=nid, label=label)
        sid, sport = src if isinstance(src, tuple) else (src, "out")
        doc.connect(sid, sport, nid, node.input_ports()[0].name)
        src = nid
    return src


def class_loss(doc: GraphDocument, logits: str, classes: int, shape: list[int]) -> None:
    doc.add_node("Target", {"kind": "class", "shape": shape, "num_classes": classes},
                 node_id="label", label="next ids" if shape else "class")
    doc.add_node("CrossEntropy", node_id="loss")
    doc.connect(logits, "out", "loss", "pred")
    doc.connect("label", "out", "loss", "target")


def value_loss(doc: GraphDocument, pred: str, shape: list[int]) -> None:
    doc.add_node("Target", {"kind": "value", "shape": shape}, node_id="target")
    doc.add_node("SquaredError", node_id="loss")
    doc.connect(pred, "out", "loss", "pred")
    doc.connect("target", "out", "loss", "target")


def layout(doc: GraphDocument) -> None:
    g = nx.DiGraph()
    g.add_nodes_from(doc.nodes)
    for e in doc.edges:
        if not ("delay" in doc.nodes[e.target].spec.tags and e.target_port == "x"):
            g.add_edge(e.source, e.target)
    gen = {n: i for i, layer in enumerate(nx.topological_generations(g)) for n in layer}
    for t in (n.id for n in doc if n.spec.source_kind == "target"):
        succ = list(g.successors(t))
        if succ:
            gen[t] = max(0, min(gen[s] for s in succ) - 1)
    order = {nid: i for i, nid in enumerate(doc.nodes)}
    y: dict[str, float] = {}
    for col in range(max(gen.values()) + 1):
        members = [n for n in gen if gen[n] == col]
        want = {n: (sum(y[p] for p in g.predecessors(n) if p in y) /
                    max(1, sum(1 for p in g.predecessors(n) if p in y))) for n in members}
        members.sort(key=lambda n: (doc.nodes[n].spec.source_kind == "target", want[n],
                                    order[n]))
        ys: list[float] = []
        for n in members:
            ys.append(want[n] if not ys else max(want[n], ys[-1] + Y_STEP))
        shift = (sum(want.values()) - sum(ys)) / len(ys) if ys else 0.0
        for n, v in zip(members, ys):
            y[n] = v + shift
    for nid in doc.nodes:
        doc.move_node(nid, (X_STEP * gen[nid], round(y[nid], 1)))


VOCAB, STEPS = 65, 64  # characters of a small text corpus; training window


def char_lstm() -> GraphDocument:
    doc = new("Character LSTM (fused)",
              "A character-level language model: every position of a 64-character window "
              "predicts the next character (65 symbols). Token ids -> a 32-dimensional "
              "embedding -> a fused LSTM with 128 units, one output per step -> 65 scores "
              "per step -> softmax cross-entropy against the window shifted by one. Any "
              "window length works at run time. Compare char_lstm_cell, the same model "
              "with the LSTM cell drawn by hand.")
    doc.add_node("TokenInput", {"steps": STEPS, "vocab_size": VOCAB}, node_id="chars",
                 label="characters")
    logits = chain(doc, "chars", ("embed", "Embedding", {"num_embeddings": VOCAB, "dim": 32}),
                   ("lstm", "LSTM", {"hidden_size": 128}),
                   ("scores", "Dense", {"units": VOCAB}, "next-char scores"))
    class_loss(doc, logits, VOCAB, [STEPS])
    return doc


def char_lstm_cell() -> GraphDocument:
    doc = new("Character LSTM (cell drawn by hand)",
              "The character LSTM of char_lstm with the LSTM cell drawn from its gate "
              "formulas: f, i, o = sigmoid(W [h_{t-1}, x_t] + b), C~ = tanh(W_C [h, x] + "
              "b_C), C_t = f C_{t-1} + i C~, h_t = o tanh(C_t). Delay nodes carry h and C "
              "to the next step; 'for each time step' and 'collect steps' bound the cell, "
              "which runs once per character with one set of weights. The compiler runs "
              "this standard cell on torch's fused LSTM kernel (same weights).")
    doc.add_node("TokenInput", {"steps": STEPS, "vocab_size": VOCAB}, node_id="chars",
                 label="characters")
    chain(doc, "chars", ("embed", "Embedding", {"num_embeddings": VOCAB, "dim": 32}))
    ids = add_lstm_cell(doc, ("embed", "out"), 128)
    logits = chain(doc, ids["seq_out"], ("scores", "Dense", {"units": VOCAB},
                                         "next-char scores"))
    class_loss(doc, logits, VOCAB, [STEPS])
    return doc


def gru_cell() -> GraphDocument:
    doc = new("GRU cell drawn by hand (sequence classifier)",
              "Classifies a sequence of 32 steps of 8 features into 4 classes with a GRU "
              "cell drawn by hand and its final state. Drawn as torch.nn.GRU computes it: "
              "n = tanh(W_n x + b_in + r * (U_n h + b_hn)), h_t = (1 - z) n + z h_{t-1}. "
              "The textbook form writes h~ = tanh(W [r * h, x]) and h_t = (1 - z) h_{t-1} + z h~ "
              "(reset before the matrix, z's roles swapped); both are GRUs, this one "
              "matches torch's weights exactly and runs on torch's fused GRU kernel.")
    doc.add_node("SequenceInput", {"steps": 32, "features": 8}, node_id="signal")
    ids = add_gru_cell(doc, ("signal", "out"), 32, out="last")
    logits = chain(doc, ids["last"], ("scores", "Dense", {"units": 4}, "class scores"))
    class_loss(doc, logits, 4, [])
    return doc


def rnn_adding_problem() -> GraphDocument:
    doc = new("IRNN on the adding problem",
              "The adding problem (Hochreiter and Schmidhuber): each step carries a random "
              "value and a 0/1 marker; the target is the sum of the two marked values, "
              "possibly far apart in a 100-step sequence. A ReLU RNN with identity-"
              "initialised recurrent weights (IRNN, Le et al. 2015) reads the sequence; "
              "its final state goes through a linear output. Squared error.")
    doc.add_node("SequenceInput", {"steps": 100, "features": 2}, node_id="sequence",
                 label="(value, marker)")
    pred = chain(doc, "sequence",
                 ("irnn", "RNN", {"hidden_size": 64, "nonlinearity": "relu", "init": "identity",
                                  "return_sequences": False}, "IRNN"),
                 ("sum", "Dense", {"units": 1}, "predicted sum"))
    value_loss(doc, pred, [1])
    return doc


def bigru_tagger() -> GraphDocument:
    doc = new("Bidirectional GRU tagger",
              "Many-to-many tagging (e.g. part of speech): each of 40 word ids gets one of "
              "12 tags. Embedding (64) -> a bidirectional GRU (64 units each way: a second "
              "recurrence over reversed time, so every step sees its left and right "
              "context) -> 12 tag scores per step -> cross-entropy over every step.")
    doc.add_node("TokenInput", {"steps": 40, "vocab_size": 1000}, node_id="words")
    logits = chain(doc, "words", ("embed", "Embedding", {"num_embeddings": 1000, "dim": 64}),
                   ("bigru", "GRU", {"hidden_size": 64, "bidirectional": True}, "BiGRU"),
                   ("tags", "Dense", {"units": 12}, "tag scores"))
    class_loss(doc, logits, 12, [40])
    return doc


def seq2seq() -> GraphDocument:
    doc = new("Sequence to sequence (encoder-decoder)",
              "Many-to-many unaligned (translation-style): a GRU encoder reads 20 source "
              "tokens and its final state starts a GRU decoder, which reads the target "
              "shifted right by one (teacher forcing: start symbol, then the previous "
              "target token) and predicts the next target token at each of 24 steps. "
              "The two vocabularies differ (100 source, 120 target ids).")
    doc.add_node("TokenInput", {"steps": 20, "vocab_size": 100}, node_id="source")
    enc = chain(doc, "source", ("src_embed", "Embedding", {"num_embeddings": 100, "dim": 48}),
                ("encoder", "GRU", {"hidden_size": 96, "return_sequences": False}))
    doc.add_node("TokenInput", {"steps": 24, "vocab_size": 120}, node_id="previous",
                 label="target shifted right")
    chain(doc, "previous", ("tgt_embed", "Embedding", {"num_embeddings": 120, "dim": 48}))
    doc.add_node("GRU", {"hidden_size": 96, "initial_state": "input"}, node_id="decoder")
    doc.connect("tgt_embed", "out", "decoder", "x")
    doc.connect(enc, "h", "decoder", "h0")
    logits = chain(doc, ("decoder", "out"), ("next_token", "Dense", {"units": 120},
                                             "next-token scores"))
    class_loss(doc, logits, 120, [24])
    return doc


def echo_state_sine() -> GraphDocument:
    doc = new("Echo-state network: next value of a sine",
              "Reservoir computing: a random, sparse, frozen recurrent reservoir of 200 "
              "tanh units (recurrent weights rescaled to spectral radius 0.9, 10% "
              "non-zero) is driven by a sine wave; only the linear read-out is trained, to "
              "predict the next value at every one of 200 steps (squared error). The "
              "reservoir's weights are not counted as trainable parameters.")
    doc.add_node("SequenceInput", {"steps": 200, "features": 1}, node_id="wave",
                 label="sin(t)")
    pred = chain(doc, "wave",
                 ("reservoir", "EchoState", {"units": 200, "spectral_radius": 0.9,
                                             "density": 0.1}),
                 ("readout", "Dense", {"units": 1}, "read-out"))
    value_loss(doc, pred, [200, 1])
    return doc


EXAMPLES = {"char_lstm": char_lstm, "char_lstm_cell": char_lstm_cell, "gru_cell": gru_cell,
            "rnn_adding_problem": rnn_adding_problem, "bigru_tagger": bigru_tagger,
            "seq2seq": seq2seq, "echo_state_sine": echo_state_sine}


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, make in EXAMPLES.items():
        doc = make()
        layout(doc)
        if example_training(name):  # the training section (runtime/training/presets.py)
            doc.set_training(example_training(name))
        problems = validate(doc)
        if problems:
            print(f"{name}:", *map(str, problems), sep="\n  ", file=sys.stderr)
            return 1
        save_graph(doc, OUT_DIR / f"{name}.json")
        print(f"wrote {name}.json ({len(doc)} nodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
