"""The bundle: graph JSON + safetensors weights + a manifest, as a directory or one .zip
(stored, not compressed: float weights hardly compress). Loading one never runs code."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import torch

from ...diagnostics import first_line
from ...graph import GraphDocument
from ...serialization import GraphFileError, dumps, loads
from ..prepare import Prepared, prepare
from ..result import ExportError, ExportResult
from ..staging import write_bytes
from ..verify import check
from ..weights import WeightsError, load_safetensors_bytes

BUNDLE_FORMAT = "netbuilder.bundle"
# float weights hardly compress (deflate saved 8% on VGG-16 and made the bundle the
# slowest export): stored as they are; benchmarks/bench_bundle.py measures both
COMPRESSION = zipfile.ZIP_STORED


def _manifest(p: Prepared) -> dict[str, Any]:
    from ... import __version__

    return {"format": BUNDLE_FORMAT, "version": 1, "netbuilder": __version__,
            "torch": torch.__version__.split("+")[0], "graph": "graph.json",
            "weights": "weights.safetensors", "inputs": list(p.sig.inputs),
            "targets": list(p.sig.targets), "outputs": list(p.sig.outputs),
            "losses": list(p.sig.losses)}


def export_bundle(p: Prepared, out: Path, result: ExportResult) -> None:
    from safetensors.torch import save

    graph = dumps(p.doc).encode("utf-8")
    weights = save(p.state, metadata={"format": "pt"})
    manifest = (json.dumps(_manifest(p), indent=2) + "\n").encode("utf-8")
    files = {"manifest.json": manifest, "graph.json": graph, "weights.safetensors": weights}
    if out.suffix.lower() == ".zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", COMPRESSION) as z:
            for name, data in files.items():
                z.writestr(name, data)
        write_bytes(out, buf.getvalue())
        result.files = [out]
    else:
        for name, data in files.items():
            write_bytes(out / name, data)
        result.files = [out / n for n in files]
    doc2, state2 = load_bundle(out)
    q = prepare(doc2, state2, weights_source=str(out))
    check(p, lambda x: q.predict(*x), result, "bundle reloaded")


def load_bundle(path: str | Path) -> tuple[GraphDocument, dict[str, torch.Tensor]]:
    """Read a bundle (directory or .zip): JSON and safetensors only, never code."""
    path = Path(path)
    try:
        if path.is_dir():
            read = lambda name: (path / name).read_bytes()  # noqa: E731
        elif zipfile.is_zipfile(path):
            z = zipfile.ZipFile(path)
            read = z.read
        elif not path.exists():
            raise ExportError(f"{path}: no such file or directory")
        else:
            raise ExportError(f"{path}: not a Netbuilder bundle (expected a directory or a .zip)")
        try:
            manifest = json.loads(read("manifest.json"))
        except (KeyError, FileNotFoundError):
            manifest = {"graph": "graph.json", "weights": "weights.safetensors"}
        if manifest.get("format", BUNDLE_FORMAT) != BUNDLE_FORMAT:
            raise ExportError(f"{path}: manifest.json is not a Netbuilder bundle manifest")
        doc = loads(read(manifest.get("graph", "graph.json")).decode("utf-8"),
                    f"{path}/graph.json")
        state = load_safetensors_bytes(read(manifest.get("weights", "weights.safetensors")),
                                       f"{path}/weights.safetensors")
    except (KeyError, FileNotFoundError) as exc:
        raise ExportError(f"{path}: bundle is missing {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise ExportError(f"{path}: damaged bundle ({first_line(exc)})") from None
    except (GraphFileError, WeightsError) as exc:
        raise ExportError(str(exc)) from None
    return doc, state
