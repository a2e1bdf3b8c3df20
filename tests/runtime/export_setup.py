"""Shared set-up of the export and import tests: import ``one_thread`` into a test module
to run its tests at one torch thread (small tensors on a shared 2-core machine: more
threads only spin; 1000x slower LSTMs were measured under load)."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
