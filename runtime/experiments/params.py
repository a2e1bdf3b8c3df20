"""Sweep parameters: parsing ``--param`` texts (``lr=1e-4..1e-1:log``,
``dense1.units=16..256:int``, ``batch_size=32,64,128``), checking them against the training
settings and the graph's node parameters, and setting a trial's values on a copy of the
graph. The study and its workers are in :mod:`runtime.experiments.sweep`.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..serialization import dumps, loads
from ..training.config import ConfigError, TrainConfig


class SweepError(ValueError):
    """Bad sweep input; the message names the argument."""


# ---- parameters -----------------------------------------------------------------------
@dataclass
class ParamSpec:
    text: str  # as given: "lr=1e-4..1e-1:log"
    name: str  # "lr" or "dense1.units"
    kind: str  # float | int | choice
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list = field(default_factory=list)
    node: str | None = None
    param: str | None = None

    def suggest(self, trial) -> Any:
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_categorical(self.name, self.choices)

    def describe(self) -> str:
        if self.kind == "choice":
            return ", ".join(str(c) for c in self.choices)
        return f"{self.low:g} .. {self.high:g}" + (" (log)" if self.log else "") + (
            " (whole numbers)" if self.kind == "int" else "")


_RANGE = re.compile(r"^\s*([^.][^,]*?)\s*\.\.\s*([^:,]+?)\s*((?::\s*(?:log|int)\s*)*)$")


def _value(token: str) -> Any:
    t = token.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t.strip("'\"")


def _number(token: str, where: str) -> float:
    try:
        v = float(token)
    except ValueError:
        raise SweepError(f"{where}: {token!r} is not a number") from None
    if not math.isfinite(v):
        raise SweepError(f"{where}: {token!r} is not a finite number")
    return v


def parse_param(text: str, doc, config: dict) -> ParamSpec:
    """One ``--param`` argument checked against the graph and its training settings."""
    where = f"--param {text}"
    name, eq, rhs = text.partition("=")
    name, rhs = name.strip(), rhs.strip()
    if not eq or not name or not rhs:
        raise SweepError(f"{where}: expected NAME=LOW..HIGH[:log][:int] or NAME=A,B,C "
                         "(e.g. lr=1e-4..1e-1:log, batch_size=32,64,128, dense1.units=16..256:int)")
    spec = ParamSpec(text=text, name=name, kind="choice")
    m = _RANGE.match(rhs)
    if m:
        flags = {f.strip() for f in m.group(3).split(":") if f.strip()}
        spec.low, spec.high = _number(m.group(1), where), _number(m.group(2), where)
        spec.log, spec.kind = "log" in flags, ("int" if "int" in flags else "float")
        if spec.low >= spec.high:
            raise SweepError(f"{where}: empty range ({m.group(1)} is not below {m.group(2)})")
        if spec.log and spec.low <= 0:
            raise SweepError(f"{where}: a log range must be above 0 (received {m.group(1)})")
    else:
        spec.choices = [_value(t) for t in rhs.split(",") if t.strip()]
        if not spec.choices:
            raise SweepError(f"{where}: no values")
        if len(set(map(repr, spec.choices))) != len(spec.choices):
            raise SweepError(f"{where}: a value is given twice")
    if "." in name:
        _check_node_param(spec, doc, where)
    else:
        _check_setting(spec, config, where)
    return spec


def _check_setting(spec: ParamSpec, config: dict, where: str) -> None:
    fields = TrainConfig().to_dict()
    if spec.name not in fields:
        close = difflib.get_close_matches(spec.name, fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SweepError(f"{where}: no training setting or node parameter {spec.name!r}{hint}; "
                         "a node parameter is written NODE.PARAM, e.g. dense1.units")
    default = fields[spec.name]
    if spec.kind != "choice":
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            raise SweepError(f"{where}: {spec.name} is not a number; give values A,B,C")
        if isinstance(default, int):
            spec.kind = "int"
            if spec.low != int(spec.low) or spec.high != int(spec.high):
                raise SweepError(f"{where}: {spec.name} takes whole numbers")
        values = [spec.low, spec.high]
    else:
        if isinstance(default, float):
            spec.choices = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                            for v in spec.choices]
        values = spec.choices
    for v in values:
        v = int(v) if spec.kind == "int" else v
        try:
            TrainConfig.from_dict({**config, spec.name: v})
        except ConfigError as exc:
            raise SweepError(f"{where}: {v!r} is refused: {exc}") from None


def _check_node_param(spec: ParamSpec, doc, where: str) -> None:
    nid, _, pname = spec.name.partition(".")
    spec.node, spec.param = nid, pname
    if nid not in doc.nodes:
        ids = ", ".join(sorted(doc.nodes))
        close = difflib.get_close_matches(nid, list(doc.nodes), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SweepError(f"{where}: no node {nid!r} in the graph{hint}; its nodes: {ids}")
    node = doc.nodes[nid]
    names = [p.name for p in node.spec.params]
    if pname not in names:
        close = difflib.get_close_matches(pname, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        have = ", ".join(names) or "none"
        raise SweepError(f"{where}: node {nid} ({node.type}) has no parameter {pname!r}{hint}; "
                         f"its parameters: {have}")
    p = node.spec.param(pname)
    if spec.kind != "choice":
        if p.type not in ("int", "float", "size"):
            raise SweepError(f"{where}: {spec.name} ({p.type}) is not a number; give values A,B,C")
        if p.type in ("int", "size"):
            spec.kind = "int"
            if spec.low != int(spec.low) or spec.high != int(spec.high):
                raise SweepError(f"{where}: {spec.name} takes whole numbers")
        values = [int(spec.low), int(spec.high)] if spec.kind == "int" else [spec.low, spec.high]
    else:
        if p.type == "float":
            spec.choices = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                            for v in spec.choices]
        values = spec.choices
    for v in values:
        problem = p.check(v)
        if problem:
            raise SweepError(f"{where}: {v!r} is refused by {spec.name}: {problem}")


def apply_values(doc, config: dict, specs: list[ParamSpec], values: dict) -> tuple[Any, dict]:
    """A copy of ``doc`` and ``config`` with a trial's ``values`` set."""
    doc = loads(dumps(doc), source="<sweep trial>")
    config = dict(config)
    for s in specs:
        if s.name not in values:
            continue
        v = values[s.name]
        if s.node is not None:
            doc.set_param(s.node, s.param, v)
        else:
            config[s.name] = v
    doc.set_training(config)
    return doc, config
