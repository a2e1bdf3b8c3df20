"""benchmarks/gpu_suite.py runs end to end on a CPU with --quick: every section gives a
row (no error row) and the markdown table is written."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_suite_runs_on_cpu_quick(tmp_path):
    out = tmp_path / "suite.md"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), "--device",
                        "cpu", "--quick", "--out", str(out)], capture_output=True, text=True,
                       timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    table = out.read_text()
    for section in ("1 training", "2 trainer vs plain", "3 graph vs model.py",
                    "4 instrumentation", "5 AMP", "6 compile"):
        assert f"| {section} |" in table
    assert "ERROR" not in table
    for name in ("digits_cnn", "char_lstm", "resnet_small"):
        assert name in table
