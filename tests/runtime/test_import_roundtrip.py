"""Import round trips: every gallery example's ONNX file (as Netbuilder writes it) and
the ONNX files plain PyTorch writes for common layers import back with the source's
outputs; a Python model tells its input shape where it can, and says plainly when not."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from runtime import load_graph
from runtime.cli import main as cli_main
from runtime.export import export_prepared, prepare
from runtime.export.core import compare, make_inputs, reference
from runtime.export.importer import import_onnx, import_python_file
from tests.runtime.export_setup import one_thread  # noqa: F401  (autouse)

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "resources" / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.json"))


def _imported(res):
    assert res.complete, [str(p) for p in res.problems]
    return prepare(res.doc, res.weights, weights_source="imported")


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_exported_to_onnx_imports_back_with_equal_outputs(path, tmp_path):
    p = prepare(load_graph(path))
    out = tmp_path / f"{path.stem}.onnx"
    export_prepared(p, "onnx", out)
    res = import_onnx(out)
    q = _imported(res)
    assert res.max_abs_diff is not None  # checked against onnxruntime on import
    # and against the original graph itself, on its own inputs (its own lengths)
    for batch, seed in ((1, 3), (5, 4)):
        xs = make_inputs(p, batch, seed=seed)
        with torch.no_grad():
            d = compare(reference(p, xs), q.predict(*xs), f"{path.stem} imported")
        assert d < 1e-4


def _onnx_of(model: nn.Module, example, path: Path, names=("x",), dynamic=None) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), example, str(path), dynamo=False,
                          input_names=list(names), output_names=["y"],
                          dynamic_axes=dynamic or {n: {0: "n"} for n in names})
    return path


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.avg = nn.AvgPool2d(2)
        self.fc = nn.Linear(8 * 2 * 2, 5)

    def forward(self, x):
        x = self.avg(self.pool(torch.relu(self.bn(self.conv(x)))))
        return self.fc(x.view(x.size(0), -1))


class ResidualConcat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 6, 1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(10, 3)

    def forward(self, x):
        y = torch.relu(self.a(x)) + x
        z = torch.cat([y, self.b(y)], 1)
        return torch.softmax(self.fc(torch.flatten(self.gap(z), 1)), -1)


class Recurrent(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.rnn = getattr(nn, kind)(5, 7, batch_first=True)
        self.fc = nn.Linear(7, 2)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


class BiSequence(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(5, 6, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        return self.fc(self.rnn(x)[0])


def _bn_stats(m):
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            with torch.no_grad():
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
    return m


@pytest.mark.parametrize("name,model,shape", [
    ("mlp", nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 4), nn.Sigmoid()), (6,)),
    ("cnn_bn_pool_flatten", ConvNet(), (3, 8, 8)),
    ("residual_concat", ResidualConcat(), (4, 6, 6)),
    ("lstm_last_step", Recurrent("LSTM"), (9, 5)),
    ("gru_last_step", Recurrent("GRU"), (9, 5)),
    ("bidirectional_gru_sequence", BiSequence(), (9, 5)),
])
def test_plain_pytorch_onnx_files_import_back(name, model, shape, tmp_path):
    torch.manual_seed(0)
    model = _bn_stats(model).eval()
    x = torch.randn(2, *shape)
    dynamic = {"x": {0: "n", 1: "t"}} if len(shape) == 2 else None
    res = import_onnx(_onnx_of(model, (x,), tmp_path / f"{name}.onnx", dynamic=dynamic))
    q = _imported(res)
    xs = (torch.randn(3, *shape),)
    with torch.no_grad():
        assert compare((model(*xs),), q.predict(*xs), name) < 1e-4


# ---- Python files: the input shape ----------------------------------------------------

CNN = """import torch
from torch import nn


class AnySize(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.gap = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return torch.flatten(self.gap(self.conv(x)), 1)


class Told(AnySize):
    example_input = torch.zeros(1, 3, 20, 20)
"""


@pytest.mark.slow
def test_import_of_an_ordinary_cnn_needs_no_input_shape(tmp_path, capsys, monkeypatch):
    # the README's command, as written there, from the repository root
    monkeypatch.chdir(EXAMPLES_DIR.parents[1])
    out = tmp_path / "net.json"
    assert cli_main(["import", "resources/pytorch/small_cnn.py", "--class", "SmallCNN",
                     "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "input shape (1, 28, 28) inferred" in err and "matches SmallCNN.forward" in err
    doc = load_graph(out)
    image = next(n for n in doc if n.type == "ImageInput")
    assert (image.params["channels"], image.params["height"], image.params["width"]) == (1, 28, 28)
    assert {"Conv2d", "MaxPool", "BatchNorm", "Flatten", "Dense"} <= {n.type for n in doc}
    src = tmp_path / "models.py"
    src.write_text(CNN)
    # an example_input attribute says it; a model that runs at any size gets a plain message
    assert import_python_file(src, "Told").complete
    rc = cli_main(["import", str(src), "--class", "AnySize", "--out", str(tmp_path / "a.json")])
    err = capsys.readouterr().err
    assert rc == 1 and "--input-shape" in err and "Traceback" not in err
    assert "runs at many square sizes" in err


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_python_modules_with_recurrent_layers_import(kind):
    """nn.LSTM/GRU/RNN (batch_first) traced with torch.fx -> the fused catalog layers,
    ``out[:, -1]`` -> their final state."""
    from runtime.export.importer import import_module, verify_import

    torch.manual_seed(0)
    m = Recurrent(kind).eval()
    res = import_module(m, {"x": {"shape": [9, 5]}})
    assert res.complete, [str(p) for p in res.problems]
    assert kind in {n.type for n in res.doc}
    verify_import(res, lambda xs: m(*xs), "the module")
    assert res.max_abs_diff is not None and res.max_abs_diff < 1e-5
    q = _imported(res)
    xs = (torch.randn(3, 13, 5),)  # another length
    with torch.no_grad():
        assert compare((m(*xs),), q.predict(*xs), kind) < 1e-5


def test_imported_ids_read_like_the_editors():
    """Module attributes keep their names; repeated function calls and the output are
    numbered like new nodes in the editor (relu1, relu2, output1), not torch.fx's relu_1."""
    import importlib.util

    from runtime.export.importer import import_module
    from runtime.graph import ID_RE, RESERVED_IDS

    path = EXAMPLES_DIR.parents[1] / "resources" / "pytorch" / "small_cnn.py"
    spec = importlib.util.spec_from_file_location("small_cnn_ids", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = import_module(mod.SmallCNN().eval(), {"x": {"shape": [1, 28, 28]}})
    assert res.complete, [str(p) for p in res.problems]
    ids = list(res.doc.nodes)
    assert {"conv1", "bn1", "pool1", "conv2", "pool2", "fc1", "fc2"} <= set(ids)
    assert [i for i in ids if i.startswith("relu")] == ["relu1", "relu2", "relu3"]
    assert "output1" in ids and not any(i.endswith("_") for i in ids)
    assert len(set(ids)) == len(ids)
    assert all(ID_RE.fullmatch(i) and i not in RESERVED_IDS for i in ids)
