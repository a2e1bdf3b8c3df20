"""The pieces model.py is made of: constructor calls recorded while the catalog builds
each layer, their rendering as code, the catalog classes torch.nn lacks (copied with
their helpers), and the forward body with a shape comment per line."""
from __future__ import annotations

import inspect
import math
import operator
import sys
import textwrap
import types
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from ..analysis import Analysis
from ..graph import GraphDocument


class CodegenError(Exception):
    """The graph uses something the code generator cannot write as plain code."""


# ---- recording constructor calls ---------------------------------------------------


@dataclass
class _Ctor:
    cls: type
    func: Any  # the __init__ function that ran first (may be inherited)
    named: dict[str, Any]  # parameter name -> value, in signature order
    varargs: tuple = ()
    varkw: dict[str, Any] = field(default_factory=dict)


class _Recorder:
    """Records the arguments of every outermost nn.Module ``__init__`` call."""

    def __init__(self):
        self.calls: dict[int, _Ctor] = {}
        self.keep: list[nn.Module] = []  # keep ids stable
        self._stack: list[types.FrameType] = []

    def _hook(self, frame, event, arg):
        if event == "call" and frame.f_code.co_name == "__init__":
            code = frame.f_code
            if code.co_argcount == 0 and not code.co_flags & inspect.CO_VARARGS:
                return
            loc = frame.f_locals
            self_name = code.co_varnames[0] if code.co_argcount else None
            obj = loc.get(self_name) if self_name else None
            if not isinstance(obj, nn.Module):
                return
            if not self._stack:
                n = code.co_argcount + code.co_kwonlyargcount
                names = code.co_varnames[1:n]
                named = {k: loc[k] for k in names if k in loc}
                i = n
                varargs: tuple = ()
                varkw: dict = {}
                if code.co_flags & inspect.CO_VARARGS:
                    varargs = tuple(loc.get(code.co_varnames[i], ()))
                    i += 1
                if code.co_flags & inspect.CO_VARKEYWORDS:
                    varkw = dict(loc.get(code.co_varnames[i], {}))
                func = _find_init(type(obj), code)
                self.calls[id(obj)] = _Ctor(type(obj), func, named, varargs, varkw)
                self.keep.append(obj)
            self._stack.append(frame)
        elif event == "return" and self._stack and frame is self._stack[-1]:
            self._stack.pop()

    def __enter__(self):
        self._old = sys.getprofile()
        sys.setprofile(self._hook)
        return self

    def __exit__(self, *exc):
        sys.setprofile(self._old)


# Dense's ``init`` choices as torch calls (runtime.catalog.modules.init_linear_ does the
# same): model.py built without its weights file starts where the graph does.
_INIT_CALLS = {"identity": "nn.init.eye_({w})", "xavier_uniform": "nn.init.xavier_uniform_({w})",
               "kaiming_normal": 'nn.init.kaiming_normal_({w}, nonlinearity="relu")',
               "orthogonal": "nn.init.orthogonal_({w})", "zeros": "nn.init.zeros_({w})"}


def weight_init_lines(nid: str, node) -> list[str]:
    init = node.params.get("init", "default") if node.type == "Dense" else "default"
    if init not in _INIT_CALLS:
        return []
    lines = [f"with torch.no_grad():  # init={init}",
             "    " + _INIT_CALLS[init].format(w=f"self.{nid}.weight")]
    if node.params.get("bias", True):
        lines.append(f"    nn.init.zeros_(self.{nid}.bias)")
    return lines


def _find_init(cls: type, code) -> Any:
    for klass in cls.__mro__:
        f = klass.__dict__.get("__init__")
        if f is not None and getattr(f, "__code__", None) is code:
            return f
    return None


def record_modules(doc: GraphDocument, analysis: Analysis, node_ids) -> tuple[dict[str, nn.Module], _Recorder]:
    """Rebuild the modules of ``node_ids`` with their catalog builders, recording how."""
    rec = _Recorder()
    built: dict[str, nn.Module] = {}
    for nid in node_ids:
        node = doc.nodes[nid]
        shapes = analysis.input_shapes(doc, nid)
        with torch.device("meta"), rec:
            built[nid] = node.spec.build(node.params, shapes)
    return built, rec


# ---- rendering values and constructors ------------------------------------------


class Writer:
    def __init__(self, rec: _Recorder):
        self.rec = rec
        self.custom: dict[str, type] = {}  # class name -> class copied into the file

    def value(self, v: Any) -> str:
        if isinstance(v, nn.Module):
            return self.ctor(v)
        if v is None or isinstance(v, (bool, int, str)):
            return repr(v)
        if isinstance(v, float):
            if math.isinf(v):
                return "math.inf" if v > 0 else "-math.inf"
            if math.isnan(v):
                return "math.nan"
            return repr(v)
        if isinstance(v, tuple):
            inner = ", ".join(self.value(x) for x in v)
            return f"({inner},)" if len(v) == 1 else f"({inner})"
        if isinstance(v, list):
            return "[" + ", ".join(self.value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{self.value(k)}: {self.value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, torch.dtype):
            return str(v)
        if isinstance(v, torch.Tensor) and v.numel() <= 64:
            return f"torch.tensor({v.tolist()!r}, dtype={v.dtype})"
        raise CodegenError(f"cannot write the constructor argument {v!r} "
                           f"({type(v).__name__}) as code")

    def class_ref(self, cls: type) -> str:
        if getattr(nn, cls.__name__, None) is cls:
            return f"nn.{cls.__name__}"
        mod = cls.__module__
        if mod.startswith("torch."):
            raise CodegenError(f"{mod}.{cls.__name__} is not in torch.nn")
        other = self.custom.get(cls.__name__)
        if other is not None and other is not cls:
            raise CodegenError(f"two different classes are named {cls.__name__}")
        self.custom[cls.__name__] = cls
        return cls.__name__

    def ctor(self, module: nn.Module) -> str:
        call = self.rec.calls.get(id(module))
        if call is None:
            raise CodegenError(f"no record of how {type(module).__name__} was built")
        defaults = {}
        if call.func is not None:
            try:
                sig = inspect.signature(call.func)
                defaults = {k: p.default for k, p in sig.parameters.items()
                            if p.default is not inspect.Parameter.empty}
            except (TypeError, ValueError):
                pass
        parts: list[str] = []
        positional = True
        for name, v in call.named.items():
            if name in ("device", "dtype") and v is None:
                positional = False
                continue
            if name in defaults:
                positional = False
                d = defaults[name]
                if _same(v, d):
                    continue
                if call.varargs:
                    raise CodegenError(f"{call.cls.__name__}: keyword before *args")
                parts.append(f"{name}={self.value(v)}")
            elif positional:
                parts.append(self.value(v))
            else:
                parts.append(f"{name}={self.value(v)}")
        parts += [self.value(v) for v in call.varargs]
        parts += [f"{k}={self.value(v)}" for k, v in call.varkw.items()]
        return f"{self.class_ref(call.cls)}({', '.join(parts)})"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and a and type(b) is int and all(type(x) is int and x == b for x in a):
        return True  # (1, 1) where the default is 1
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


# ---- copying custom classes ---------------------------------------------------------


def source_with_helpers(classes: dict[str, type]) -> tuple[list[str], set[str]]:
    """Source blocks of the custom classes and the module-level helpers they use."""
    blocks: list[str] = []
    done: set[str] = set()
    need_imports: set[str] = set()

    def code_names(obj) -> set[str]:
        names: set[str] = set()

        def walk(co):
            names.update(co.co_names)
            for c in co.co_consts:
                if isinstance(c, types.CodeType):
                    walk(c)
        if isinstance(obj, type):
            for v in vars(obj).values():
                f = getattr(v, "__func__", v)
                if hasattr(f, "__code__"):
                    walk(f.__code__)
        elif hasattr(obj, "__code__"):
            walk(obj.__code__)
        return names

    def add(name: str, obj: Any) -> None:
        key = f"{getattr(obj, '__module__', '')}.{name}"
        if key in done:
            return
        done.add(key)
        module = sys.modules.get(getattr(obj, "__module__", ""))
        g = vars(module) if module else {}
        for dep in sorted(code_names(obj)):
            val = g.get(dep)
            if val is None or dep in ("torch", "nn", "F", "math"):
                continue
            if isinstance(val, types.ModuleType):
                need_imports.add(dep)
                continue
            if getattr(val, "__module__", None) == obj.__module__ and (
                    inspect.isfunction(val) or inspect.isclass(val)):
                add(dep, val)
            elif isinstance(val, (int, float, str, bool, tuple)):
                if key + dep not in done:
                    done.add(key + dep)
                    blocks.append(f"{dep} = {val!r}")
        for base in (obj.__mro__[1:] if isinstance(obj, type) else ()):
            if base.__module__ == obj.__module__:
                add(base.__name__, base)
        try:
            src = textwrap.dedent(inspect.getsource(obj))
        except (OSError, TypeError):
            raise CodegenError(f"the source of {name} is not available to copy") from None
        blocks.append(src.rstrip())

    for name, cls in classes.items():
        add(name, cls)
    return blocks, need_imports


def _fmt_shape(shape) -> str:
    if shape is None:
        return ""
    return "(" + ", ".join(["N"] + [str(d) for d in shape]) + ")"


class ForwardWriter:
    def __init__(self, doc: GraphDocument, analysis: Analysis, gm: fx.GraphModule):
        self.doc, self.analysis, self.gm = doc, analysis, gm
        self.uses_operator = False

    def comment(self, node: fx.Node) -> str:
        info = None
        if node.op == "call_module":
            info = self.analysis.nodes.get(node.target)
            if node.target in self.doc.nodes and self.doc.nodes[node.target].spec.is_loss:
                return "  # -> scalar"
            if info and info.output_shapes:
                shapes = [_fmt_shape(s) for s in info.output_shapes.values()]
                return "  # -> " + ", ".join(shapes)
        if node.op == "call_function" and node.target is operator.getitem:
            src = node.args[0]
            if src.op == "call_module":
                info = self.analysis.nodes.get(src.target)
                if info:
                    shapes = list(info.output_shapes.values())
                    i = node.args[1]
                    if isinstance(i, int) and i < len(shapes):
                        return f"  # -> {_fmt_shape(shapes[i])}"
        return ""

    def arg(self, a: Any) -> str:
        if isinstance(a, fx.Node):
            return a.name
        if isinstance(a, (tuple, list)):
            inner = ", ".join(self.arg(x) for x in a)
            if isinstance(a, tuple):
                return f"({inner},)" if len(a) == 1 else f"({inner})"
            return f"[{inner}]"
        if isinstance(a, dict):
            return "{" + ", ".join(f"{k!r}: {self.arg(v)}" for k, v in a.items()) + "}"
        return repr(a)

    def body(self, params_doc: dict[str, str]) -> tuple[list[str], list[str]]:
        """(parameter names, body lines) of a method computing the graph."""
        params, lines = [], []
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                params.append(node.name)
            elif node.op == "call_module":
                args = ", ".join(self.arg(a) for a in node.args)
                lines.append(f"{node.name} = self.{node.target}({args}){self.comment(node)}")
            elif node.op == "call_function":
                if node.target is operator.getitem:
                    lines.append(f"{node.name} = {self.arg(node.args[0])}[{node.args[1]!r}]"
                                 f"{self.comment(node)}")
                elif node.target is operator.add and len(node.args) == 2:
                    lines.append(f"{node.name} = {self.arg(node.args[0])} + {self.arg(node.args[1])}")
                else:
                    from torch.fx.node import _get_qualified_name

                    q = _get_qualified_name(node.target)
                    if q.startswith("operator."):
                        self.uses_operator = True
                    elif not q.startswith("torch."):
                        raise CodegenError(f"cannot write a call to {q} as plain torch code")
                    args = [self.arg(a) for a in node.args] + [
                        f"{k}={self.arg(v)}" for k, v in node.kwargs.items()]
                    lines.append(f"{node.name} = {q}({', '.join(args)})")
            elif node.op == "call_method":
                args = [self.arg(a) for a in node.args[1:]] + [
                    f"{k}={self.arg(v)}" for k, v in node.kwargs.items()]
                lines.append(f"{node.name} = {self.arg(node.args[0])}.{node.target}({', '.join(args)})")
            elif node.op == "get_attr":
                lines.append(f"{node.name} = self.{node.target}")
            elif node.op == "output":
                lines.append(f"return {self.arg(node.args[0])}")
        return params, lines
