"""Per-epoch checkpoints: weights in safetensors, everything else in a plain torch dict.

``epoch0003.safetensors`` holds the model's tensors (node-prefixed names, as in the
exported weights); ``epoch0003.pt`` holds optimizer state, random-number state, the
config and the trainer's counters, and is read back with ``torch.load(weights_only=True)``
so loading a checkpoint never runs code. Both are written atomically; the ``.pt`` file is
written last, so its presence marks a complete checkpoint.
"""
from __future__ import annotations

import io
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..serialization import atomic_write_bytes

_NAME = re.compile(r"^epoch(\d{4,})\.pt$")
_KEYS = ("epoch", "weights", "optimizer", "rng", "config", "trainer")


class CheckpointError(ValueError):
    """A file or folder is not a usable Netbuilder checkpoint; the message says why."""


def save_weights(module: torch.nn.Module, path: str | Path) -> Path:
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    atomic_write_bytes(Path(path), st_save(tensors))
    return Path(path)


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    return st_load(Path(path).read_bytes())


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(directory: str | Path, epoch: int, module: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, trainer_state: dict[str, Any],
                    config: dict[str, Any], keep: int = 2) -> Path:
    """Write epoch ``epoch`` (1-based, completed) and delete all but the newest ``keep``."""
    directory = Path(directory)
    stem = f"epoch{epoch:04d}"
    save_weights(module, directory / f"{stem}.safetensors")
    payload = {"format": "netbuilder-checkpoint", "version": 1, "epoch": epoch,
               "weights": f"{stem}.safetensors", "optimizer": optimizer.state_dict(),
               "rng": rng_state(), "config": config, "trainer": trainer_state}
    buf = io.BytesIO()
    torch.save(payload, buf)
    path = directory / f"{stem}.pt"
    atomic_write_bytes(path, buf.getvalue())
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
        old.with_suffix(".safetensors").unlink(missing_ok=True)
    return path


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def checkpoint_epoch(path: str | Path) -> int | None:
    """The epoch number in a checkpoint's file name (epoch0003.pt -> 3), else None."""
    m = _NAME.match(Path(path).name)
    return int(m.group(1)) if m else None


def find_checkpoint(path: str | Path) -> Path:
    """The ``.pt`` file of a checkpoint given as that file, its ``.safetensors`` twin, or a
    run folder (its newest checkpoint, in the folder or its ``checkpoints/``)."""
    path = Path(path)
    if path.is_dir():
        found = list_checkpoints(path) or list_checkpoints(path / "checkpoints")
        if not found:
            raise CheckpointError(f"{path}: no checkpoint (epochNNNN.pt) in this folder")
        return found[-1]
    if path.suffix == ".safetensors":
        path = path.with_suffix(".pt")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    return path


def read_state(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """(the ``.pt`` file, its state dict) without the weights. The file is read with
    ``torch.load(weights_only=True)`` only: a file holding other Python objects (a pickle
    that could run code) is refused, never loaded."""
    path = find_checkpoint(path)
    try:
        with warnings.catch_warnings():  # (torch warns about pickle protocols it refuses)
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError, RuntimeError, KeyError, EOFError...
        if "weights only" in str(exc).lower() or "weights_only" in str(exc):
            raise CheckpointError(
                f"{path} is not a Netbuilder checkpoint: it holds Python objects that a safe "
                "(weights-only) load refuses, so it was not loaded. Resume only from the "
                "epochNNNN.pt files that Netbuilder writes") from None
        raise CheckpointError(f"{path} is not a Netbuilder checkpoint (it cannot be read as "
                              f"a torch file: {type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != "netbuilder-checkpoint":
        raise CheckpointError(f"{path} is not a Netbuilder checkpoint (no "
                              "'netbuilder-checkpoint' marker)")
    missing = [k for k in _KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint (no {', '.join(missing)})")
    name = state["weights"]
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".safetensors"):
        raise CheckpointError(f"{path}: bad weights file name {name!r} in the checkpoint")
    return path, state


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(weights, state) of a checkpoint given as its ``.pt`` file or its folder (newest).
    Raises CheckpointError (a ValueError) with a plain message for anything else."""
    path, state = read_state(path)
    wpath = path.parent / state["weights"]
    try:
        weights = load_weights(wpath)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: its weights file {wpath.name} is missing") from None
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(f"{wpath}: cannot read the checkpoint's weights "
                              f"(not a safetensors file: {exc})") from None
    return weights, state
