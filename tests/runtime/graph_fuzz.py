"""Mutated gallery files for the fuzz test (tests/runtime/test_hostile_graphs.py).

``mutant(seed)`` is a fixed corpus: case ``seed`` takes one gallery file and applies one
to four random mutations (a hostile value anywhere in the tree, a deleted key, a node
type, id or parameter swapped, edges rewired, deep nesting, a node wrapped in a Block...).
``run_case(text)`` feeds the text through ``loads``, ``validate``, ``analyze``,
``build_module`` and the command line (``validate``, ``summary``, ``compile``, in-process)
and returns what went wrong: an uncaught exception, a traceback printed by the CLI, or an
exit status other than 0/1. Run as a script for a larger corpus:

    python -m tests.runtime.graph_fuzz 3000        # prints a summary of the findings
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "resources" / "examples").glob("*.json"))
BUILD_PARAM_LIMIT = 20_000_000  # larger models are built only by validate/analysis here

CLASHING_IDS = ["graph", "code", "meta", "type", "train", "eval", "to", "float", "__init__",
                "forward", "training", "cuda", "half", "state_dict", "_modules", "hidden1\n",
                "a b", "", "x" * 300, "self", "None"]
TORCH_NAMES = ["AdaptiveAvgPool2d", "Linear", "Conv2D", "BatchNorm2d", "MaxPool2d", "relu"]


def _hostile_values(rng: random.Random) -> list:
    deep_list: object = 0
    for _ in range(rng.choice([50, 700, 3000])):
        deep_list = [deep_list]
    return [
        0, -1, 1, 2, 3, 7, -(2**31), 2**31, 2**63, 10**30, 10**400, 1e308, -1e-9, 0.5, 1.5,
        float("nan"), float("inf"), True, False, None, "", "x", "\ud800", "\u202e\u0000",
        "a" * 10_000, [], [0], [1, 2], [1, 2, 3, 4], [-1, -1], [[1], [2]], {}, {"a": 1},
        deep_list, [10**6] * 3, 100_000, 10**7, "float", "index", "class",
    ]


def _paths(value, prefix=()):
    """Every (path, value) in a JSON tree (bounded)."""
    out = [(prefix, value)]
    stack = [(prefix, value)]
    while stack and len(out) < 5000:
        p, v = stack.pop()
        items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
        for k, x in items:
            out.append((p + (k,), x))
            stack.append((p + (k,), x))
    return out


def _set(tree, path, value):
    for k in path[:-1]:
        tree = tree[k]
    tree[path[-1]] = value


def _delete(tree, path):
    for k in path[:-1]:
        tree = tree[k]
    del tree[path[-1]]


def _mutate(data: dict, rng: random.Random) -> None:
    from runtime.catalog import CATALOG

    nodes = data.get("nodes") if isinstance(data.get("nodes"), list) else []
    edges = data.get("edges") if isinstance(data.get("edges"), list) else []
    kind = rng.randrange(14)
    if kind <= 2:  # a hostile value somewhere
        path, _ = rng.choice(_paths(data)[1:] or [((), None)])
        if path:
            _set(data, path, rng.choice(_hostile_values(rng)))
    elif kind == 3:  # delete a key or an item
        path, _ = rng.choice(_paths(data)[1:] or [((), None)])
        if path:
            _delete(data, path)
    elif kind == 4 and nodes:  # a parameter of a node set to a hostile value
        n = rng.choice(nodes)
        if isinstance(n, dict) and isinstance(n.get("params"), dict) and n["params"]:
            n["params"][rng.choice(list(n["params"]))] = rng.choice(_hostile_values(rng))
    elif kind == 5 and nodes:  # another node type (catalog or torch's names)
        n = rng.choice(nodes)
        if isinstance(n, dict):
            n["type"] = rng.choice(list(CATALOG) + TORCH_NAMES)
    elif kind == 6 and nodes:  # an id clashing with the compiled module, or malformed
        n = rng.choice(nodes)
        if isinstance(n, dict):
            old, new = n.get("id"), rng.choice(CLASHING_IDS)
            n["id"] = new
            for e in edges:  # rename it in the edges too, so the id itself is the problem
                if isinstance(e, dict):
                    for k in ("source", "target"):
                        if e.get(k) == old:
                            e[k] = new
    elif kind == 7 and nodes and edges:  # rewire an edge
        e = rng.choice(edges)
        n = rng.choice(nodes)
        if isinstance(e, dict) and isinstance(n, dict):
            e[rng.choice(["source", "target"])] = n.get("id")
    elif kind == 8 and edges:  # drop or duplicate an edge
        i = rng.randrange(len(edges))
        if rng.random() < 0.5:
            del edges[i]
        else:
            edges.append(copy.deepcopy(edges[i]))
    elif kind == 9:  # format and version
        data["version"] = rng.choice([2, 2.0, 1.0, 0, -1, "1", None, 10**400, 1.5])
    elif kind == 10 and nodes:  # a position out of range
        n = rng.choice(nodes)
        if isinstance(n, dict):
            n["position"] = rng.choice([[10**400, 0], [1e308, -1e308], [0], "here",
                                        [float("nan"), 1]])
    elif kind == 11 and nodes:  # a label that cannot be printed or is huge
        n = rng.choice(nodes)
        if isinstance(n, dict):
            n["label"] = rng.choice(["\ud800", "\udfff tail", "ok\n\r\t", "\u0000", "x" * 5000])
    elif kind == 12 and nodes:  # wrap a node in Blocks nested deep
        i = rng.randrange(len(nodes))
        inner = nodes[i]
        for _ in range(rng.choice([1, 3, 40, 250])):
            inner = {"id": "blk", "type": "Block", "params": {"graph": {
                "nodes": [inner, {"id": "p", "type": "BlockInput",
                                  "params": rng.choice([{}, [], "x", {"kind": 3}])}],
                "edges": []}}}
        nodes[i] = inner
    elif kind == 13 and nodes:  # a sequence length or size far too large
        n = rng.choice(nodes)
        if isinstance(n, dict) and isinstance(n.get("params"), dict):
            key = rng.choice(["steps", "units", "filters", "features", "hidden_size",
                              "vocab_size", "kernel_size", "height", "reservoir_size"])
            n["params"][key] = rng.choice([10**4, 10**5, 10**7, 2**31 - 1, 10**12])


def mutant(seed: int) -> tuple[str, str]:
    """(name, JSON text) of fuzz case ``seed``."""
    rng = random.Random(seed)
    path = rng.choice(EXAMPLES)
    data = json.loads(path.read_text(encoding="utf-8"))
    for _ in range(rng.randint(1, 4)):
        _mutate(data, rng)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # (deep lists and Blocks: at most a few thousand levels)
    try:
        text = json.dumps(data)
    finally:
        sys.setrecursionlimit(limit)
    if rng.random() < 0.05:  # raw text damage
        cut = rng.randrange(len(text))
        text = rng.choice([text[:cut], text[:cut] + "[" * 5000 + text[cut:],
                           text.replace('"', "'", 1), text + "\x00"])
    return f"{path.stem}#{seed}", text


def _cli(args: list[str]) -> tuple[int, str]:
    from runtime.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:  # noqa: BLE001 - an uncaught exception: the finding
            code = -1
            err.write(traceback.format_exc(limit=-3))
    return code, out.getvalue() + err.getvalue()


def _weight_elements(doc) -> int:
    """Elements of every parameter and buffer the built model holds, trainable or not
    (an EchoState's frozen reservoir counts no parameters but may need gigabytes), from
    builds on the meta device; 0 when the graph cannot be expanded or analysed."""
    import torch

    from runtime import pipeline

    try:
        checked = pipeline.run(doc)
    except Exception:  # noqa: BLE001 - the entry points under test report it
        return 0
    flat, analysis = checked.flat, checked.flat_analysis
    if flat is None or analysis is None:
        return 0
    total = 0
    for node in flat.nodes.values():
        if node.spec.build is None or node.spec.is_source:
            continue
        try:
            with torch.device("meta"):
                module = node.spec.build(node.params, analysis.input_shapes(flat, node.id))
        except Exception:  # noqa: BLE001 - not buildable: nothing to allocate
            continue
        if isinstance(module, torch.nn.Module):
            total += sum(t.numel() for t in module.parameters())
            total += sum(t.numel() for t in module.buffers())
    return total


def run_case(text: str, folder: Path) -> list[str]:
    """Findings for one mutant: [] when every entry point answered in plain words."""
    from runtime import GraphFileError, analyze, build_module, loads, validate
    from runtime.compiler import CompileError
    from runtime.diagnostics import has_errors

    findings = []

    def step(name, fn, allowed=()):
        try:
            return fn()
        except allowed:
            return None
        except Exception:  # noqa: BLE001 - that is the finding
            findings.append(f"{name}: {traceback.format_exc(limit=-3)}")
            return None

    doc = step("loads", lambda: loads(text), (GraphFileError,))
    if doc is not None:
        diags = step("validate", lambda: validate(doc)) or []
        analysis = step("analyze", lambda: analyze(doc))
        small = analysis is not None and analysis.total_params <= BUILD_PARAM_LIMIT \
            and _weight_elements(doc) <= BUILD_PARAM_LIMIT
        if small and not has_errors(diags):
            step("build_module", lambda: build_module(doc), (CompileError,))
            step("build_module(predict)", lambda: build_module(doc, mode="predict"),
                 (CompileError,))
    path = folder / "mutant.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    for cmd in ("validate", "summary", "compile"):
        if cmd == "compile" and not (doc is not None and small):
            continue
        code, output = _cli([cmd, str(path)])
        if "Traceback" in output or code not in (0, 1):
            findings.append(f"cli {cmd}: exit {code}\n{output[-2000:]}")
    return findings


class CaseTimeout(BaseException):
    """A case ran past its time: a hang (BaseException: no ``except Exception`` in the
    code under test swallows it)."""


def run_guarded(text: str, folder: Path, seconds: float) -> list[str]:
    """``run_case`` with a wall-clock limit: a case past ``seconds`` is a finding."""
    import signal

    def alarm(signum, frame):
        raise CaseTimeout()
    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return run_case(text, folder)
    except CaseTimeout:
        return [f"hang: still running after {seconds:.0f} s\n" + traceback.format_exc(limit=-8)]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _rss_mb() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20
    except (OSError, ValueError, IndexError):
        return -1


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 300
    start = int(argv[1]) if len(argv) > 1 else 0
    bad, slowest = {}, (0.0, "")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(start, start + count):
            name, text = mutant(seed)
            t = time.perf_counter()
            found = run_guarded(text, Path(tmp), 120)
            dt = time.perf_counter() - t
            slowest = max(slowest, (dt, name))
            if found:
                bad[name] = found
                print(f"--- {name}", *found, sep="\n", flush=True)
            if (seed - start + 1) % 100 == 0:
                print(f"{seed - start + 1} cases, {len(bad)} with findings, "
                      f"{time.perf_counter() - t0:.0f} s, {_rss_mb()} MB resident",
                      flush=True)
    print(f"{count} cases in {time.perf_counter() - t0:.0f} s; {len(bad)} with findings; "
          f"slowest {slowest[1]} {slowest[0]:.2f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
