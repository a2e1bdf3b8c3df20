"""The one checker: what the editor, the command line and the compiler know of a graph.

    expand blocks -> structural validation -> analysis -> id ranges -> diagnostics
    mapped back onto the blocks

:func:`check` runs these steps in this order and is the only place that looks for Block
nodes: the editor's live diagnostics, ``netbuilder validate / summary / compile``,
:func:`validate`, :func:`analyze` and ``build_module`` all come through here, so they
agree on what a graph is and refuse exactly the same graphs.

``shapes`` says when the analysis runs:

- ``True`` (``validate``, the command line, the compiler): when the structure has no
  errors; its diagnostics (shapes, time axes, ids out of range) are added then;
- ``"always"`` (the editor): also on a graph with structural errors, so the shapes of
  the sound parts stay on the canvas while one part is broken;
- ``False``: structure only.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import blocks
from .analysis import Analysis, NodeInfo
from .analysis import analyze as analyze_flat
from .diagnostics import Diagnostic, has_errors
from .graph import GraphDocument, GraphError
from .handwritten import check_last_axis_layers
from .validation import check_id_ranges, param_diagnostics, structural_diagnostics


@dataclass
class Checked:
    """Everything :func:`check` learnt about one document.

    ``flat`` is the document with every block expanded (``doc`` itself when it has no
    blocks; None when a block's inner graph is broken) and ``flat_analysis`` its analysis:
    what the compiler builds from. ``analysis`` is the analysis of ``doc`` as drawn (a
    Block's NodeInfo sums its inner nodes) and ``diagnostics`` name the nodes of ``doc``.
    """

    doc: GraphDocument
    flat: GraphDocument | None
    analysis: Analysis | None
    flat_analysis: Analysis | None
    diagnostics: list[Diagnostic]

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def run(doc: GraphDocument, *, shapes: bool | str = True,
        analysis: Analysis | None = None) -> Checked:
    """Check ``doc`` (see the module docstring for ``shapes``). ``analysis``: one already
    computed for ``doc`` (a document without blocks), used instead of analysing again."""
    if not blocks.has_blocks(doc):
        diags = structural_diagnostics(doc)
        a = _analyse(doc, diags, shapes, analysis)
        return Checked(doc, doc, a, a, diags)
    own = [d for n in blocks.block_nodes(doc) for d in param_diagnostics(n)]
    if own:  # a Block whose own parameters are wrong cannot be expanded
        return Checked(doc, None, None, None, own)
    try:
        flat = blocks.expand(doc)
    except GraphError as exc:
        return Checked(doc, None, None, None, blocks.broken_diagnostics(doc, exc))
    origin = flat.derived["block_origin"]
    flat_diags = structural_diagnostics(flat)
    fa = _analyse(flat, flat_diags, shapes, None)
    diags = blocks.stale_port_diagnostics(doc) + [blocks.map_diagnostic(d, origin)
                                                  for d in flat_diags]
    return Checked(doc, flat, _fold(doc, flat, fa) if fa is not None else None, fa, diags)


def _analyse(doc: GraphDocument, diags: list[Diagnostic], shapes, given) -> Analysis | None:
    """The analysis when ``shapes`` asks for it; its diagnostics and the id-range checks
    (which need the analysed shapes) are appended to ``diags``."""
    if not shapes or (shapes != "always" and has_errors(diags)):
        return None
    a = given if given is not None else analyze_flat(doc)
    refused = {(d.node_id, d.param) for d in diags if d.code == "param"}
    diags += [d for d in a.diagnostics if (d.node_id, d.param) not in refused]  # (said once)
    diags += check_id_ranges(doc, a)
    diags += check_last_axis_layers(doc, a)  # warnings: a Flatten missing before a Dense
    return a


def _fold(doc: GraphDocument, flat: GraphDocument, res: Analysis) -> Analysis:
    """The analysis of the expansion as one of ``doc``: each Block's NodeInfo sums its
    inner nodes and gives its output ports' shapes; diagnostics name the block."""
    origin = flat.derived["block_origin"]
    infos: dict[str, NodeInfo] = {}
    order: list[str] = []
    for fid in res.order:
        oid = origin.get(fid, fid)
        if oid not in infos:
            order.append(oid)
        if oid == fid:
            infos[oid] = res.nodes[fid]
            continue
        info = infos.setdefault(oid, NodeInfo())
        sub = res.nodes.get(fid)
        if sub is not None:
            info.params += sub.params
            info.macs += sub.macs
            info.activation_bytes += sub.activation_bytes
            if sub.error and info.error is None and sub.error != "inputs unknown":
                info.error = sub.error
    for bid, info in infos.items():
        node = doc.nodes.get(bid)
        if node is None or node.type != blocks.BLOCK:
            continue
        for port, (inner_id, inner_port) in blocks.output_sources(node).items():
            sub = res.nodes.get(bid + blocks.SEP + inner_id)
            if sub is not None and inner_port in sub.output_shapes:
                info.output_shapes[port] = sub.output_shapes[inner_port]
                info.output_kinds[port] = sub.output_kinds[inner_port]
    return Analysis(infos, order, [blocks.map_diagnostic(d, origin) for d in res.diagnostics])


def check(doc: GraphDocument, *, shapes: bool | str = True
          ) -> tuple[Analysis | None, list[Diagnostic]]:
    """(analysis of ``doc`` or None, diagnostics naming its nodes): see :func:`run`."""
    c = run(doc, shapes=shapes)
    return c.analysis, c.diagnostics


def validate(doc: GraphDocument, *, shapes: bool = True) -> list[Diagnostic]:
    """Diagnostics pinned to node ids; ``[]`` when the graph is valid. With ``shapes``
    (the default) the shape analysis and the id-range checks run too when the structure
    is sound, so one call answers "will this graph compile?"."""
    return run(doc, shapes=shapes).diagnostics


def analyze(doc: GraphDocument) -> Analysis:
    """Shapes, parameters, MACs and receptive fields per node (runtime/analysis.py), of
    any document: one with blocks is analysed through its expansion. Never raises:
    problems are the analysis' diagnostics."""
    if not blocks.has_blocks(doc):
        return analyze_flat(doc)
    try:
        flat = blocks.expand(doc)
    except GraphError as exc:
        return Analysis({}, [], blocks.broken_diagnostics(doc, exc))
    return _fold(doc, flat, analyze_flat(flat))


def flatten(doc: GraphDocument) -> GraphDocument:
    """``doc`` with every block expanded (``doc`` itself when it has none); raises
    GraphError naming a broken block."""
    return blocks.expand(doc) if blocks.has_blocks(doc) else doc
