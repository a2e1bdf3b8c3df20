"""ONNX's recurrent operators (LSTM, GRU, RNN) -> the catalog's fused LSTM/GRU/RNN nodes.

ONNX runs them time-major: (T, N, D) in, Y (T, dirs, N, H), Y_h and Y_c (dirs, N, H) out,
with Transpose/Squeeze/Reshape around them to get back to batch-first tensors. Those
layout nodes are not layers: the walk records what each such value *is* in
``s.layout`` (the batch-first input seen time-major, a layer's outputs in ONNX's layout)
and the node that brings a value back to batch-first maps it to the layer's port. The
weights are reordered from ONNX's gate order (LSTM i, o, f, c; GRU z, r, h) to torch's
(LSTM i, f, g, o; GRU r, z, n).
"""
from __future__ import annotations

import torch

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
# torch's gate order as indices into ONNX's
TORCH_ORDER = {"LSTM": (0, 2, 3, 1), "GRU": (1, 0, 2), "RNN": (0,)}


def _reorder(w: torch.Tensor, op: str) -> torch.Tensor:
    parts = w.chunk(GATES[op], 0)
    return torch.cat([parts[i] for i in TORCH_ORDER[op]], 0).contiguous()


def recurrent(s, n, a, label):
    op = n.op_type
    lay = s.layout.get(n.input[0])
    if lay is None or lay[0] != "time_major_in":
        raise ValueError(f"{op} maps only on a batch-first sequence transposed to time-major")
    src = lay[1]
    direction = a.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in ("forward", "bidirectional"):
        raise ValueError(f"{op} direction={direction!r}: only forward and bidirectional map")
    if a.get("clip") is not None or a.get("layout", 0):
        raise ValueError(f"{op} with clip or layout=1 has no catalog equivalent")
    if op == "GRU" and not a.get("linear_before_reset", 0):
        raise ValueError("GRU with linear_before_reset=0 differs from torch's (the catalog's) GRU")
    acts = [x.decode() if isinstance(x, bytes) else x for x in a.get("activations", [])]
    nonlin = "tanh"
    if op == "RNN" and acts:
        if len(set(acts)) != 1 or acts[0] not in ("Tanh", "Relu"):
            raise ValueError(f"RNN activations {acts}: only Tanh or Relu map")
        nonlin = acts[0].lower()
    elif acts and op != "RNN":
        default = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}[op]
        if acts[:len(default)] != default or any(x != y for x, y in zip(acts, default * 2)):
            raise ValueError(f"{op} activations {acts} differ from the standard ones")
    ins = list(n.input) + [""] * (8 - len(n.input))
    w, r = s.const(ins[1]), s.const(ins[2])
    b = s.const(ins[3]) if ins[3] else None
    if w is None or r is None or (ins[3] and b is None):
        raise ValueError(f"{op} weights are not constants")
    if ins[4]:
        raise ValueError(f"{op} with sequence_lens has no catalog equivalent")
    dirs, hidden = w.shape[0], int(a.get("hidden_size", r.shape[-1]))
    states = [x for x in ins[5:7 if op == "LSTM" else 6]]
    given = []
    for x in states:
        if not x or s.layout.get(x, ("",))[0] == "batch_zeros" or (
                s.const(x) is not None and not bool(s.const(x).any())):
            given.append(None)
        elif s.layout.get(x, ("",))[0] == "state_in" and dirs == 1:
            given.append(s.layout[x][1])
        else:
            raise ValueError(f"{op} initial state {x!r} is neither zeros nor a (N, H) value")
    if any(g is not None for g in given) and any(g is None for g in given):
        raise ValueError(f"{op}: some initial states given, others zero: not supported")
    params = {"hidden_size": hidden, "num_layers": 1, "bidirectional": dirs == 2,
              "return_sequences": True,
              "initial_state": "input" if given and given[0] is not None else "zeros"}
    if op == "RNN":
        params["nonlinearity"] = nonlin
    weights = {}
    for d in range(dirs):
        sfx = "_reverse" if d else ""
        weights[f"rnn.weight_ih_l0{sfx}"] = _reorder(w[d], op)
        weights[f"rnn.weight_hh_l0{sfx}"] = _reorder(r[d], op)
        bd = b[d] if b is not None else torch.zeros(2 * GATES[op] * hidden)
        wb, rb = bd.chunk(2)
        weights[f"rnn.bias_ih_l0{sfx}"] = _reorder(wb, op)
        weights[f"rnn.bias_hh_l0{sfx}"] = _reorder(rb, op)
    values = [src] + ([g for g in given] if params["initial_state"] == "input" else [])
    nid = s.add(label, op, params, values, weights)
    outs = list(n.output) + ["", "", ""]
    if outs[0]:
        s.layout[outs[0]] = ("rnn_y", nid, dirs)
    if outs[1]:
        s.layout[outs[1]] = ("rnn_state", nid, "h", dirs)
    if op == "LSTM" and outs[2]:
        s.layout[outs[2]] = ("rnn_state", nid, "c", dirs)
    return None


def layout_node(s, n, a, label) -> bool:
    """A layout node (Transpose, Squeeze, Reshape, Gather, Unsqueeze) on a value recorded
    in ``s.layout``, or one that prepares a recurrent layer's input: record or map it and
    return True; False when it is an ordinary node."""
    op, x = n.op_type, n.input[0] if n.input else ""
    if op in GATES:
        return False
    lay = s.layout.get(x)
    out = n.output[0] if n.output else ""
    perm = list(a.get("perm", [])) if op == "Transpose" else None
    axes = _axes(s, n, a) if op in ("Squeeze", "Unsqueeze") else None
    if lay is None:
        if op == "Transpose" and perm == [1, 0, 2] and x in s.values and all(
                c.op_type in GATES for c in s.consumers.get(out, [])):
            s.layout[out] = ("time_major_in", x)
            return True
        if op == "Unsqueeze" and axes == [0] and x in s.values:
            s.layout[out] = ("state_in", x)  # (N, H) -> (1, N, H): an initial state
            return True
        return False
    kind = lay[0]
    shape = s.const(n.input[1]) if op == "Expand" and len(n.input) > 1 else None
    if kind == "state_in" and op == "Expand" and shape is not None and shape.numel() == 3 \
            and int(shape[0]) == 1 and int(shape[1]) in (s.BATCH, 1):
        s.layout[out] = lay  # (1, N, H) broadcast to itself
    elif kind == "rnn_y" and op == "Squeeze" and axes == [1] and lay[2] == 1:
        s.layout[out] = ("time_major_out", lay[1])
    elif kind == "rnn_y" and op == "Transpose" and perm == [0, 2, 1, 3]:
        s.layout[out] = ("rnn_y_t", lay[1])
    elif kind == "rnn_y_t" and op == "Reshape":
        s.layout[out] = ("time_major_out", lay[1])
    elif kind == "time_major_out" and op == "Transpose" and perm == [1, 0, 2]:
        s.values[out] = (lay[1], "out")
    elif kind == "rnn_state" and lay[3] == 1 and (
            (op == "Squeeze" and axes == [0]) or
            (op == "Gather" and a.get("axis", 0) == 0 and s.const(n.input[1]) is not None
             and s.const(n.input[1]).numel() == 1 and int(s.const(n.input[1])) in (0, -1))):
        s.values[out] = (lay[1], lay[2])
    elif kind == "time_major_out" and op == "Gather" and a.get("axis", 0) == 0 and \
            s.const(n.input[1]) is not None and s.const(n.input[1]).numel() == 1 and \
            int(s.const(n.input[1])) == -1:
        nid = lay[1]
        s.values[out] = (nid, "h")  # the last step of a one-layer output is its final state
    else:
        raise ValueError(f"{op} of a recurrent layer's {kind.replace('_', ' ')} value in a "
                         "layout the importer does not follow")
    return True


def _axes(s, n, a):
    axes = a.get("axes")
    if axes is None and len(n.input) > 1 and s.const(n.input[1]) is not None:
        axes = s.const(n.input[1]).reshape(-1).tolist()
    return [int(v) for v in axes] if axes is not None else None


def last_step(s, n, a):
    """``out[:, -1]`` of a one-directional recurrent layer's batch-first output: its final
    hidden state (port h); None for any other Gather."""
    idx = s.const(n.input[1]) if len(n.input) > 1 else None
    src = s.values.get(n.input[0])
    if src is None or idx is None or idx.numel() != 1 or int(idx) != -1 or a.get("axis", 0) != 1:
        return None
    node = s.doc.nodes[src[0]]
    if node.type not in GATES or src[1] != "out" or node.params.get("bidirectional"):
        return None
    return src[0], n.output[0], "h"
