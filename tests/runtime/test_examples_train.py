"""Every gallery example trains from its own training section: `netbuilder train FILE
--epochs 1` (cut to two steps with --max-steps to stay fast) ends without error."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from runtime.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
FILES = sorted(p.stem for p in EXAMPLES.glob("*.json"))


def test_there_are_examples():
    assert len(FILES) >= 15


@pytest.mark.slow
@pytest.mark.parametrize("stem", FILES)
def test_example_trains_one_short_epoch(stem, tmp_path, capsys):
    code = main(["train", str(EXAMPLES / f"{stem}.json"), "--epochs", "1", "--max-steps", "2",
                 "--threads", "1", "--quiet", "--out", str(tmp_path / "run")])
    out = capsys.readouterr()
    final = json.loads(out.out.strip().splitlines()[-1])
    assert code == 0, final.get("error")
    assert final["status"] == "completed" and final["steps"] == 2
    assert math.isfinite(final["train_loss"])
    assert "warning" not in out.err and "Traceback" not in out.err
    assert (tmp_path / "run" / "weights.safetensors").exists()
