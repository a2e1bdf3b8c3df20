"""What every import shares: its result and problems, input nodes, unique ids, and the
check of an imported graph against its source."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import torch

from ...diagnostics import first_line
from ...graph import RESERVED_IDS, GraphDocument


DEFAULT_STEPS = 16


class ImportError_(Exception):
    """The file or module cannot be imported at all (plain message)."""


@dataclass
class ImportProblem:
    node: str  # the name in the source model (fx node or ONNX node)
    reason: str

    def __str__(self) -> str:
        return f"{self.node}: {self.reason}"


@dataclass
class ImportResult:
    doc: GraphDocument
    weights: dict[str, torch.Tensor] = field(default_factory=dict)  # by node id: "fc1.weight"
    problems: list[ImportProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    max_abs_diff: float | None = None  # imported graph vs the source, when checked

    @property
    def complete(self) -> bool:
        return not self.problems



def verify_import(res: ImportResult, run_source: Callable, what: str) -> None:
    """Compile the imported graph with its weights and compare it with the source model
    (``run_source(inputs) -> outputs``) at two batch sizes; records the difference or a
    problem."""
    if res.problems:
        return
    from ..prepare import prepare
    from ..result import ExportError
    from ..verify import check_cases, compare, reference

    try:
        p = prepare(res.doc, res.weights, weights_source="imported weights")
        worst = 0.0
        for name, xs in check_cases(p, seq=False):
            with torch.no_grad():
                got = run_source(xs)
            worst = max(worst, compare(reference(p, xs), got, f"imported graph vs {what} at {name}"))
        res.max_abs_diff = worst
        res.notes.append(f"the imported graph matches {what}: max abs diff {worst:.3g}")
    except ExportError as exc:
        res.problems.append(ImportProblem("(whole model)", str(exc)))
    except Exception as exc:
        res.problems.append(ImportProblem("(whole model)", f"the imported graph does not run: "
                                                           f"{first_line(exc)}"))


def input_node(doc: GraphDocument, nid: str, spec: dict, pos) -> None:
    shape = list(spec["shape"])
    if spec.get("role") == "target":
        kind = "class" if spec.get("dtype") == "int64" else "value"
        params = {"kind": kind, "shape": shape}
        if kind == "class":
            params["num_classes"] = int(spec.get("high", 10))
        doc.add_node("Target", params, node_id=nid, position=pos)
    elif spec.get("dtype") == "int64":
        doc.add_node("TokenInput", {"steps": shape[0], "vocab_size": int(spec.get("high", 64))},
                     node_id=nid, position=pos)
    elif len(shape) == 1:
        doc.add_node("VectorInput", {"features": shape[0]}, node_id=nid, position=pos)
    elif len(shape) == 2:
        doc.add_node("SequenceInput", {"steps": shape[0], "features": shape[1]}, node_id=nid,
                     position=pos)
    elif len(shape) == 3:
        doc.add_node("ImageInput", {"channels": shape[0], "height": shape[1], "width": shape[2]},
                     node_id=nid, position=pos)
    else:
        raise ValueError(f"input {nid}: per-sample shape {tuple(shape)} has no input node "
                         "(expected (D), (T, D) or (C, H, W))")


class Ids:
    """Unique, valid node ids for an import: a module's attribute name as it is
    (``conv1``, ``fc_0``), a function call or a reserved name numbered the way the editor
    numbers new nodes (``relu1``, ``relu2``, ``output1``)."""

    def __init__(self):
        self.used: set[str] = set()

    @staticmethod
    def _clean(name: str) -> str:
        s = re.sub(r"\W", "_", str(name)).strip("_") or "node"
        return s if re.match(r"[A-Za-z_]", s) else "n_" + s

    def make(self, name: str) -> str:
        s = self._clean(name)
        if s in RESERVED_IDS:
            return self.numbered(s)
        base, i = s, 1
        while s in self.used:
            i += 1
            s = f"{base}_{i}"
        self.used.add(s)
        return s

    def numbered(self, name: str) -> str:
        """``name`` without a trailing ``_N`` (how torch.fx tells repeated calls apart),
        then the first free number: relu1, relu2, ..."""
        stem = re.sub(r"_\d+$", "", self._clean(name)) or "node"
        sep = "_" if stem[-1].isdigit() else ""
        i = 1
        while f"{stem}{sep}{i}" in self.used or f"{stem}{sep}{i}" in RESERVED_IDS:
            i += 1
        self.used.add(f"{stem}{sep}{i}")
        return f"{stem}{sep}{i}"


def size(v):
    v = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    return list(v) if len(set(v)) > 1 else int(v[0])



def window(kernel, stride, padding) -> dict:
    """Pooling parameters; a stride equal to the window is written 0 (the catalog default)."""
    k, s = size(kernel), size(stride)
    return {"kernel_size": k, "stride": 0 if s == k else s, "padding": size(padding)}
