"""The recurrent regions of model.py: each region's one-step cell as a module, run by
``TimeLoop``, whose source is the runtime's own ``RecurrentLoop`` (read with
``inspect.getsource``, renamed, without the branch that runs the loop as a torch scan
while torch.export traces it): one implementation, no copy to keep in step."""
from __future__ import annotations

import ast
import builtins
import inspect
import textwrap

from ..analysis import Analysis
from ..graph import GraphDocument
from .codeparts import CodegenError, ForwardWriter, Writer, record_modules, weight_init_lines


def time_loop_source() -> str:
    """``class TimeLoop(nn.Module)``: RecurrentLoop's source for model.py (plain torch)."""
    from ..recurrent.loop import RecurrentLoop

    tree = ast.parse(textwrap.dedent(inspect.getsource(RecurrentLoop)))
    cls = tree.body[0]
    cls.name = "TimeLoop"

    class Plain(ast.NodeTransformer):
        def visit_If(self, node):  # the export-time scan: not needed by plain code
            if not node.orelse and any(isinstance(x, ast.Name) and x.id in ("exporting", "scan_loop")
                                       for x in ast.walk(node)):
                return None
            return self.generic_visit(node)

        def visit_arg(self, node):
            node.annotation = None
            return node

        def visit_FunctionDef(self, node):
            node.returns = None
            return self.generic_visit(node)

        def visit_AnnAssign(self, node):  # x: T = v -> x = v
            if node.value is None:
                return None
            return ast.copy_location(ast.Assign([node.target], node.value), node)

    tree = ast.fix_missing_locations(Plain().visit(tree))
    loaded = {x.id for x in ast.walk(cls) if isinstance(x, ast.Name) and isinstance(x.ctx, ast.Load)}
    bound = {x.id for x in ast.walk(cls) if isinstance(x, ast.Name) and not isinstance(x.ctx, ast.Load)}
    bound |= {a.arg for a in ast.walk(cls) if isinstance(a, ast.arg)}
    free = loaded - bound - set(dir(builtins)) - {"torch", "nn"}
    if free:  # the runtime's loop grew a dependency model.py does not have
        raise CodegenError(f"RecurrentLoop uses {', '.join(sorted(free))}, which model.py lacks")
    return ast.unparse(tree)


def loop_regions(doc: GraphDocument, analysis: Analysis, names: list[str]) -> dict:
    """Compiled loop submodules by name -> (region, consts, cell fx module)."""
    if not names:
        return {}
    from ..recurrent.regions import RegionCompiler
    from ..topology import find_regions

    regions = {r.name: r for r in find_regions(doc)[0]}
    out = {}
    for name in names:
        r = regions.get(name)
        if r is None:
            raise CodegenError(f"{name}: a compiled submodule that is not a node or a region")
        consts = r.constants(doc)
        cell = RegionCompiler(doc, analysis, r).build_cell(consts)
        out[name] = (r, consts, cell)
    return out


def loop_code(doc: GraphDocument, analysis: Analysis, region, w: Writer) -> tuple[str, str]:
    """(class source of the region's one-step cell, constructor of its TimeLoop)."""
    r, consts, cell = region
    built, rec = record_modules(doc, analysis, r.inner + r.delays)
    w.rec.calls.update(rec.calls)
    w.rec.keep.extend(rec.keep)
    cls = "".join(p[:1].upper() + p[1:] for p in r.name.split("_")) + "Cell"
    fw = ForwardWriter(doc, analysis, cell)
    params, lines = fw.body({})
    body = [f"class {cls}(nn.Module):",
            f'    """One time step of {", ".join(r.nodes)} (shapes per step)."""', "",
            "    def __init__(self):", "        super().__init__()"]
    for nid in r.inner:
        if any(n.op == "call_module" and n.target == nid for n in cell.graph.nodes):
            body.append(f"        self.{nid} = {w.ctor(built[nid])}  # {doc.nodes[nid].type}")
            body += ["        " + ln for ln in weight_init_lines(nid, doc.nodes[nid])]
    if not any(n.op == "call_module" for n in cell.graph.nodes):
        body.append("        pass")
    body += ["", f"    def forward(self, {', '.join(params)}):",
             f"        # inputs: x_t of {', '.join(r.steps)}; states of {', '.join(r.delays) or '-'}"]
    body += ["        " + ln for ln in lines]
    states = ", ".join(f"{d!r}: {w.ctor(built[d])}" for d in r.delays)
    p0 = doc.nodes[r.steps[0]].params
    kinds = [doc.nodes[o].type for o in r.outputs]
    ctor = (f"TimeLoop({cls}(), nn.ModuleDict({{{states}}}), {len(r.steps)}, {len(consts)}, "
            f"{kinds!r}, reverse={bool(p0.get('reverse'))!r}, tbptt={int(p0.get('tbptt') or 0)})")
    return "\n".join(body), ctor
