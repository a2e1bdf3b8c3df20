"""Import a class from a Python file. THIS RUNS THE FILE: explicit and user-initiated,
like running it (the app does it in a child process)."""
from __future__ import annotations

import copy
import importlib.util
import inspect
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn


from ...diagnostics import first_line
from .common import ImportError_, ImportResult, verify_import
from .fx_import import import_module


def load_python_module(path: str | Path, class_name: str) -> tuple[type, Any]:
    """Execute a Python file (explicit, user-initiated) and return the class and module."""
    path = Path(path)
    if not path.is_file():
        raise ImportError_(f"{path}: no such file")
    mod_name = f"_netbuilder_import_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ImportError_(f"{path}: running the file failed: {type(exc).__name__}: "
                           f"{first_line(exc)}") from None
    finally:
        try:
            sys.path.remove(str(path.parent))
        except ValueError:
            pass
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        found = sorted(k for k, v in vars(module).items()
                       if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == mod_name)
        raise ImportError_(f"{path}: no nn.Module class {class_name!r} (found: "
                           f"{', '.join(found) or 'none'})")
    return cls, module


def import_python_file(path: str | Path, class_name: str,
                       input_shapes: dict[str, list[int]] | list[list[int]] | None = None,
                       *, weights: str | Path | None = None, losses: bool = True) -> ImportResult:
    """Import ``class_name`` from a Python file. THIS RUNS THE FILE (explicitly asked for).

    A generated model.py needs no shapes (INPUTS/TARGETS are in the file) and brings its
    weights.safetensors and its losses along. Other modules need the per-sample shape of
    each forward argument; the constructor must take no arguments.
    """
    cls, module = load_python_module(path, class_name)
    try:
        model = cls()
    except Exception as exc:
        raise ImportError_(f"{class_name}() failed: {type(exc).__name__}: {first_line(exc)} "
                           "(the class must be constructible without arguments)") from None
    generated = hasattr(module, "INPUTS") and isinstance(module.INPUTS, dict)
    if weights is None and generated:
        w = Path(path).with_name("weights.safetensors")
        weights = w if w.exists() else None
    if weights is not None:
        from ..weights import WeightsError, load_weights

        try:
            model.load_state_dict(load_weights(weights))
        except WeightsError as exc:
            raise ImportError_(str(exc)) from None
        except RuntimeError as exc:
            raise ImportError_(f"{weights} does not fit {class_name}: {first_line(exc)}") from None
    model.eval()
    fwd = [p for p in inspect.signature(model.forward).parameters]
    if generated:
        inputs = {k: dict(v) for k, v in module.INPUTS.items()}
        targets = {k: dict(v) for k, v in getattr(module, "TARGETS", {}).items()}
    else:
        if input_shapes is None:
            input_shapes, how = infer_input_shapes(model, fwd)
            if input_shapes is None:
                raise ImportError_(
                    f"cannot tell the input shape of {class_name}.forward ({', '.join(fwd)}): "
                    f"{how}. Pass the per-sample shape of each input, batch excluded, e.g. "
                    "--input-shape 1,28,28 (or give the class an attribute example_input = "
                    "torch.zeros(1, 1, 28, 28))")
            notes = [f"input shape {', '.join(str(tuple(v)) for v in input_shapes)} {how}"]
        else:
            notes = []
        if isinstance(input_shapes, dict):
            shapes = input_shapes
        else:
            if len(input_shapes) != len(fwd):
                raise ImportError_(f"{class_name}.forward takes {len(fwd)} inputs "
                                   f"({', '.join(fwd)}), {len(input_shapes)} shapes given")
            shapes = dict(zip(fwd, input_shapes))
        inputs = {k: {"shape": list(v), "dtype": "float32"} for k, v in shapes.items()}
        targets = {}
    use_losses = losses and generated and getattr(module, "LOSSES", ()) and hasattr(model, "compute_losses")
    res = import_module(model, inputs, targets=targets if use_losses else None,
                        name=class_name, method="compute_losses" if use_losses else "forward")
    if generated and getattr(module, "TRAINING", None):
        res.doc.training = dict(module.TRAINING)
    res.notes.extend(notes if not generated else [])
    if weights is None:
        res.notes.append("no weights given: the imported weights are the module's initial ones")
    verify_import(res, lambda xs: model(*xs), f"{class_name}.forward")
    return res


def infer_input_shapes(model: nn.Module, params: list[str]) -> tuple[list[list[int]] | None, str]:
    """The per-sample shape of each forward input where the model tells it, and how it was
    found; (None, why not) otherwise. In order: an ``example_input`` attribute (a tensor or
    a tuple of tensors, batch first), an ``input_shape`` attribute (per-sample dims, or one
    tuple per input), a first layer ``nn.Linear`` (its in_features), a first layer
    ``nn.Conv2d``/``nn.Conv1d`` where the square sizes (lengths) from 1 to 512 the model
    runs at form one bounded run, e.g. 28-31 for two 2x2 poolings before a Linear over
    7x7 maps: the smallest (tried on the meta device: no real computation). A model that
    runs at any size (global pooling) does not tell."""
    ex = getattr(model, "example_input", None)
    if isinstance(ex, torch.Tensor):
        ex = (ex,)
    if isinstance(ex, (tuple, list)) and ex and all(isinstance(t, torch.Tensor) and t.dim() >= 1
                                                   for t in ex):
        return [list(t.shape[1:]) for t in ex], "from its example_input"
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, (tuple, list)) and shape:
        if all(isinstance(d, int) for d in shape):
            return [list(shape)], "from its input_shape attribute"
        if all(isinstance(s, (tuple, list)) and all(isinstance(d, int) for d in s) for s in shape):
            return [list(s) for s in shape], "from its input_shape attribute"
    if len(params) != 1:
        return None, f"forward takes {len(params)} inputs"
    first = next((m for m in model.modules() if not list(m.children())
                  and any(True for _ in m.parameters(recurse=False))), None)
    if isinstance(first, nn.Linear):
        return [[first.in_features]], f"from its first layer, Linear({first.in_features}, ...)"
    if isinstance(first, (nn.Conv1d, nn.Conv2d)):
        two_d = isinstance(first, nn.Conv2d)
        meta = copy.deepcopy(model).to("meta")
        fits = [s for s in range(1, 513)
                if _runs_on_meta(meta, (first.in_channels,) + ((s, s) if two_d else (s,)))]
        kind = f"{type(first).__name__}({first.in_channels}, ...)"
        what = "square size" if two_d else "length"
        if fits and fits == list(range(fits[0], fits[-1] + 1)) and fits[-1] < 512:
            # one run of sizes (pooling floors them to the same map): the smallest is the
            # one no pooling crops
            s = fits[0]
            many = f"{what}s {fits[0]}-{fits[-1]} fit, the smallest leaves no pixel unused" \
                if len(fits) > 1 else f"the only {what} that fits"
            return [[first.in_channels] + ([s, s] if two_d else [s])], \
                f"inferred from the layers (first {kind}; {many})"
        if not fits:
            return None, f"its first layer is {kind} and it runs at no {what} up to 512"
        return None, (f"its first layer is {kind} and it runs at many {what}s "
                      f"({fits[0]}, {fits[1]}, ... {fits[-1]})")
    what = type(first).__name__ if first is not None else "no layer with weights"
    return None, f"its first layer is {what}"


def _runs_on_meta(meta: nn.Module, shape: tuple[int, ...]) -> bool:
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta(torch.empty((2,) + shape, device="meta"))
        return True
    except Exception:
        return False

