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
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..serialization import atomic_write_bytes

_NAME = re.compile(r"^epoch(\d{4,})\.pt$")


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


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(weights, state) of a checkpoint given as its ``.pt`` file or its folder (newest)."""
    path = Path(path)
    if path.is_dir():
        found = list_checkpoints(path) or list_checkpoints(path / "checkpoints")
        if not found:
            raise FileNotFoundError(f"{path}: no checkpoint (epochNNNN.pt) in this folder")
        path = found[-1]
    if path.suffix == ".safetensors":
        path = path.with_suffix(".pt")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != "netbuilder-checkpoint":
        raise ValueError(f"{path}: not a Netbuilder checkpoint")
    weights = load_weights(path.parent / state["weights"])
    return weights, state
