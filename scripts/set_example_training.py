"""Write the training section of the gallery examples that have a preset
(runtime/training/presets.py), leaving everything else in the files unchanged.

    python scripts/set_example_training.py     # updates resources/examples/*.json
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from runtime.serialization import load_graph, save_graph  # noqa: E402
from runtime.training.presets import EXAMPLE_TRAINING, example_training  # noqa: E402

OUT_DIR = ROOT / "resources" / "examples"


def main(out_dir: Path = OUT_DIR) -> int:
    for stem in EXAMPLE_TRAINING:
        path = out_dir / f"{stem}.json"
        if not path.exists():
            print(f"skipped {stem}: {path} does not exist", file=sys.stderr)
            continue
        doc = load_graph(path)
        doc.set_training(example_training(stem))
        save_graph(doc, path)
        print(f"wrote the training section of {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
