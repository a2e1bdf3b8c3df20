"""Data-parallel training of the Trainer under torchrun (DistributedDataParallel).

``netbuilder train FILE --nproc N`` starts N copies of the ordinary single-process
command under torchrun (:func:`launch`); each copy sees torchrun's environment
(``WORLD_SIZE``, ``RANK``...) and the Trainer asks :func:`current` how to behave:

- every rank builds the same model from the same seed and walks the same global batches
  (one permutation per epoch, as a single run); rank r takes the r-th of N equal parts of
  each global batch (:meth:`Group.shard`), and its loss is weighted so that DDP's mean of
  the ranks' gradients is the gradient of the whole batch's mean loss: N processes follow
  the single-process trajectory (batch-statistics layers aside);
- step losses, the epoch's loss sum and accuracy counts are summed over ranks once per
  flush / epoch (no extra collective per step);
- validation runs on every rank over the whole validation split (identical results, so
  early stopping and plateau decisions agree without a broadcast);
- only rank 0 emits events, writes the run folder (metrics, checkpoints, weights) and
  prints; the others are silent.
"""
from __future__ import annotations

import os
import subprocess
import sys

import torch
import torch.distributed as dist

WORKER_ENV = "NETBUILDER_DDP_WORKER"  # set in the processes torchrun starts


class Group:
    """The process group as the Trainer sees it (a single process: rank 0 of 1)."""

    def __init__(self, rank: int = 0, world: int = 1):
        self.rank, self.world = rank, world

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        """This rank's part of the global batch ``idx`` and its loss weight (the part's
        share of the batch times N: the ranks' weighted means average to the batch mean)."""
        if not self.active:
            return idx, 1.0
        part = torch.tensor_split(idx, self.world)[self.rank]
        return part, len(part) * self.world / max(1, len(idx))

    def wrap(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        if not self.active:
            return module
        return torch.nn.parallel.DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None)

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over ranks, in place (no-op for one process)."""
        if self.active:
            dist.all_reduce(t)
        return t

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.barrier()  # teardown without a barrier could abort a rank still saving
            dist.destroy_process_group()


_GROUP: Group | None = None


def current(device: torch.device | None = None) -> Group:
    """The group of this process: joins torchrun's process group on first use when started
    by torchrun (``WORLD_SIZE`` > 1), else a single-process group."""
    global _GROUP
    if _GROUP is not None:
        return _GROUP
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Group()
    if not dist.is_initialized():
        backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
        if device is not None and device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    _GROUP = Group(dist.get_rank(), dist.get_world_size())
    return _GROUP


def local_device(device: torch.device) -> torch.device:
    """Under torchrun, each process on a machine takes its own GPU (LOCAL_RANK)."""
    if device.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def is_worker() -> bool:
    return os.environ.get(WORKER_ENV) == "1"


# ---------------------------------------------------------------------- the launcher
def torchrun_command(nproc: int, nnodes: int = 1, node_rank: int = 0,
                     master_addr: str | None = None, master_port: int | None = None) -> list[str]:
    """torchrun's command line (without the script) for N processes on this machine, on
    one of ``nnodes`` machines when more than one."""
    # torchrun of this interpreter (a `torchrun` on PATH may belong to another Python, one
    # without Netbuilder: a venv that is not activated, conda next to the system's)
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if nnodes > 1:
        cmd += [f"--nnodes={nnodes}", f"--node-rank={node_rank}",
                f"--master-addr={master_addr or '127.0.0.1'}",
                f"--master-port={master_port or 29500}"]
    else:
        cmd += ["--standalone"] if master_port is None else [
            f"--master-addr={master_addr or '127.0.0.1'}", f"--master-port={master_port}"]
    return cmd


# torchrun's own log lines (its banner about OMP_NUM_THREADS, agent start/stop notes):
# dropped from the child's stderr so that it carries only Netbuilder's messages
_LAUNCHER_NOISE = ("*****", "Setting OMP_NUM_THREADS", "torch.distributed.", "W1", "I1",
                   "[W", "[I", "WARNING:torch", "INFO:torch")


def launch(nproc: int, argv: list[str], nnodes: int = 1, node_rank: int = 0,
           master_addr: str | None = None, master_port: int | None = None) -> tuple[int, str]:
    """Run ``python -m runtime <argv>`` as N processes under torchrun; stdout passes through
    (rank 0's JSON lines), torchrun's banner is dropped from stderr. Returns the exit code
    (1 when torchrun cannot start) and the last line written to stdout."""
    import threading

    cmd = torchrun_command(nproc, nnodes, node_rank, master_addr, master_port)
    cmd += ["-m", "runtime", *argv]
    env = dict(os.environ)
    env[WORKER_ENV] = "1"
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, nproc))))
    env["LOGLEVEL"] = "ERROR"
    env["PYTHONUNBUFFERED"] = "1"
    # a rank leaves with os._exit (see the CLI): its semaphores are reclaimed, quietly
    env["PYTHONWARNINGS"] = "ignore:resource_tracker"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, bufsize=1)
    except OSError as exc:
        print(f"error: cannot start torchrun: {exc}", file=sys.stderr)
        return 1, ""

    def errors():
        for line in proc.stderr:
            if not line.lstrip().startswith(_LAUNCHER_NOISE):
                sys.stderr.write(line)
                sys.stderr.flush()

    t = threading.Thread(target=errors, daemon=True)
    t.start()
    last = ""
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if line.strip():
            last = line.strip()
    code = proc.wait()
    t.join(timeout=5)
    return code, last
