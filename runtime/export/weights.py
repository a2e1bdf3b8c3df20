"""Weights in and out, safely: safetensors always; a torch file only through
``torch.load(weights_only=True)``, which refuses pickled code. Nothing here runs code
from a file."""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from ..diagnostics import first_line
from ..serialization import atomic_write_bytes


class WeightsError(Exception):
    """Weights that cannot be read or do not fit the model; the message says why."""


def state_dict_for_file(module: nn.Module) -> dict[str, torch.Tensor]:
    """The module's state dict as independent, contiguous CPU tensors (safetensors
    refuses tensors that share memory)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def safetensors_bytes(tensors: Mapping[str, torch.Tensor],
                      metadata: dict[str, str] | None = None) -> bytes:
    """The tensors in safetensors format (contiguous CPU copies where needed)."""
    from safetensors.torch import save

    return save({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()},
                metadata=metadata)


def save_safetensors(tensors: Mapping[str, torch.Tensor], path: Path,
                     metadata: dict[str, str] | None = None) -> None:
    atomic_write_bytes(Path(path), safetensors_bytes(tensors, metadata))


def load_safetensors_bytes(data: bytes, source: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    try:
        return dict(load(data))
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise WeightsError(f"{source}: not a valid safetensors file ({first_line(exc)})") from None


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` (preferred) or a torch file.

    A torch file (``.pt``, ``.pth``, ``.ckpt``) is read with ``weights_only=True``:
    tensors and plain containers only; a pickle that would build objects or call
    functions is refused with a WeightsError. A checkpoint dict holding the weights under
    ``model``, ``state_dict`` or ``model_state_dict`` is accepted.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such file") from None
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read ({exc})") from None
    if path.suffix == ".safetensors" or not _looks_like_torch_file(data):
        return load_safetensors_bytes(data, str(path))
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{path}: refused: the file is a pickle that would run code or build objects "
            f"when loaded, not plain weights ({first_line(exc)}). Netbuilder loads only "
            "tensors; convert the weights to .safetensors with a trusted script.") from None
    except Exception as exc:
        raise WeightsError(f"{path}: not a readable weights file ({first_line(exc)})") from None
    if isinstance(obj, dict) and isinstance(obj.get("weights"), str) \
            and obj["weights"].endswith(".safetensors"):
        # a Netbuilder training checkpoint: the weights sit in a safetensors file beside it
        side = path.parent / Path(obj["weights"]).name
        return load_weights(side)
    return _state_dict_from(obj, str(path))


def _looks_like_torch_file(data: bytes) -> bool:
    # torch.save writes a zip (PK..) or, in the legacy format, a raw pickle (0x80 protocol)
    return data[:2] == b"PK" or data[:1] == b"\x80"


def _state_dict_from(obj, source: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in ("model", "state_dict", "model_state_dict", "weights"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor)
                                                         for v in inner.values()):
                obj = inner
                break
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            return dict(obj)
    raise WeightsError(f"{source}: expected a dict of named tensors (a state dict), found "
                       f"{type(obj).__name__}")


def _kind(t: torch.Tensor) -> str:
    """floating point, integer or bool: a tensor of another kind is refused, not cast
    (a float copy of float weights at another precision is converted)."""
    if t.dtype == torch.bool:
        return "bool"
    return "floating point" if t.is_floating_point() or t.is_complex() else "integer"


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def apply_weights(module: nn.Module, weights: Mapping[str, torch.Tensor], source: str,
                  *, allow_extra: bool = True) -> None:
    """Load ``weights`` into ``module`` after checking every name, shape and kind of
    dtype (floating point, integer, bool); a
    WeightsError lists what is missing or mismatched, naming the node (the key's prefix)."""
    own = module.state_dict()
    missing = [k for k in own if k not in weights]
    extra = [k for k in weights if k not in own]
    wrong = [f"{k}: expected {tuple(own[k].shape)}, found {tuple(weights[k].shape)}"
             for k in own if k in weights and tuple(own[k].shape) != tuple(weights[k].shape)]
    kinds = [f"{k}: expected {_kind(own[k])} ({_dtype(own[k])}), found {_kind(weights[k])} "
             f"({_dtype(weights[k])})"
             for k in own if k in weights and _kind(own[k]) != _kind(weights[k])]
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
    if wrong:
        problems.append("shape mismatch: " + "; ".join(wrong[:8]))
    if kinds:
        problems.append("dtype mismatch: " + "; ".join(kinds[:8]))
    if extra and not allow_extra:
        problems.append("unexpected " + ", ".join(extra[:8]))
    if problems:
        raise WeightsError(f"{source} does not fit this graph: " + "; ".join(problems))
    with torch.no_grad():
        module.load_state_dict({k: weights[k].to(own[k].dtype) for k in own}, strict=True)
