"""A run that stopped learning: a non-finite loss, or a loss that grew far above where it
started (e.g. a learning rate of 1e6: finite numbers, no learning). Both end the run as an
error that quotes the learning rate in force, and write the last good checkpoint's weights
as the run's weights.safetensors (the weights after the failing step are garbage)."""
from __future__ import annotations

from . import checkpoint as ckpt

DIVERGED = 100.0  # an epoch's mean loss this many times the first step's (and over 10)


def stop_non_finite(trainer, s: int, e: int, b: int, value: float, lr: float) -> dict:
    kept = keep_last_good(trainer)
    return trainer._fail(
        f"loss became {value} at step {s} (epoch {e}, batch {b}): training stopped. "
        f"Last good checkpoint: {trainer.last_checkpoint or 'none'}; {kept}. Lower the "
        f"learning rate (in force at that step: {lr:g}) or set gradient clipping "
        "(clip_norm).", s)


def check(trainer, epoch: int, train_loss: float) -> dict | None:
    """The run's final metrics as an error when epoch ``epoch``'s mean loss grew far above
    the first step's; None while it has not."""
    first = getattr(trainer, "first_loss", None)
    if first is None or not first > 0 or train_loss <= max(DIVERGED * first, 10.0):
        return None
    kept = keep_last_good(trainer)
    lr = trainer.optimizer.param_groups[0]["lr"]
    return trainer._fail(
        f"training diverged: the mean loss of epoch {epoch} is {train_loss:.4g}, "
        f"{train_loss / first:,.0f} times the first step's {first:.4g}. Last good "
        f"checkpoint: {trainer.last_checkpoint or 'none'}; {kept}. Lower the learning "
        f"rate (in force: {lr:g}) or set gradient clipping (clip_norm).",
        trainer.state["step"])


def keep_last_good(trainer) -> str:
    """Write the last good checkpoint's weights as the run's weights.safetensors; says
    what was written."""
    if trainer.out_dir is None or not trainer.main:
        return "no weights written"
    if not trainer.last_checkpoint:
        return "no weights written (no epoch had finished)"
    try:
        weights, _ = ckpt.load_checkpoint(trainer.last_checkpoint)
        trainer.module.load_state_dict(weights)
        path = trainer.save_weights(trainer.out_dir / "weights.safetensors")
    except (ckpt.CheckpointError, OSError, RuntimeError) as exc:
        return f"the last good weights could not be written ({exc})"
    return f"{path.name} holds its weights (epoch {trainer.state['epoch']})"
