"""Scoring a run: which output and target give accuracy, counting correct predictions on
the device, and evaluating a split (loss, accuracy, confusion matrix, misclassified
samples). A part of :class:`~.trainer.Trainer`.
"""
from __future__ import annotations

from typing import Any

import torch

CLASSIFICATION_LOSSES = ("CrossEntropy", "MulticlassHinge", "BinaryCrossEntropy")


class Scoring:
    """The Trainer's accuracy and evaluation steps (mixed into Trainer)."""

    def _find_accuracy(self) -> None:
        """Which output and target give accuracy: the first classification loss."""
        self.acc = None
        for lid in self.sig.losses:
            node = self.doc.nodes[lid]
            if node.type not in CLASSIFICATION_LOSSES:
                continue
            ins_ = {e.target_port: e.source for e in self.doc.in_edges(lid)}
            pred, target = ins_.get("pred"), ins_.get("target")
            if target not in self.sig.targets:
                continue
            key = pred if pred in self.sig.outputs else next(
                (o for o in self.sig.outputs if self.doc.in_edges(o)
                 and self.doc.in_edges(o)[0].source == pred), None)
            if key is None:
                continue
            binary = node.type == "BinaryCrossEntropy"
            self.acc = {"key": key, "target": self.sig.targets.index(target), "binary": binary,
                        "logits": node.params.get("from_logits", True),
                        "scalar": len(self.doc.nodes[target].params.get("shape", [])) == 0,
                        "classes": self.doc.nodes[target].params.get("num_classes", 2),
                        "ignore": int(node.params.get("ignore_index", -1))}
            return

    def _correct(self, out: dict, ys: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """(number correct, predictions, count): the count is an int, or a device tensor
        when a padding class is left out."""
        a = self.acc
        pred, y = out[a["key"]], ys[a["target"]]
        if a["binary"]:
            p = (pred > (0.0 if a["logits"] else 0.5)).long()
            y = (y > 0.5).long()
        else:
            p = pred.argmax(-1)
        if a.get("ignore", -1) >= 0:  # padding positions are not predictions to score
            keep = y != a["ignore"]  # the count stays on the device: no sync per step
            return ((p == y) & keep).sum(), p, keep.sum()
        return (p == y).sum(), p, y.numel()

    @torch.no_grad()
    def evaluate(self, part: str = "val") -> dict:
        """Loss, accuracy, confusion matrix and misclassified samples of a split."""
        n = self.feed.size(part)
        if not n:
            return {}
        model, bs = self.module, self.cfg.batch_size * 4
        model.eval()
        total, correct, count, preds, labels = 0.0, 0, 0, [], []
        try:
            for bx, by in self.feed.eval_batches(part, bs):
                with torch.autocast(self.device.type, dtype=self.amp_dtype,
                                    enabled=self.amp_dtype is not None):
                    out = model(*bx, *by)
                total += out["loss"].float().item() * len(bx[0])
                if self.acc:
                    c, p, m = self._correct(out, by)
                    correct, count = correct + int(c), count + int(m)
                    if self.acc["scalar"]:
                        preds.append(p.cpu())
                        labels.append(by[self.acc["target"]].cpu().long())
        finally:
            model.train()
        result: dict[str, Any] = {"loss": total / n, "accuracy": correct / count if count else None}
        if preds:
            p, y = torch.cat(preds), torch.cat(labels)
            k = max(self.acc["classes"], 2)
            if k <= 100:
                conf = torch.zeros(k * k, dtype=torch.long).index_add_(
                    0, y * k + p, torch.ones_like(y)).view(k, k)
                result["confusion"] = conf.tolist()
            wrong = torch.nonzero(p != y).flatten()[:25].tolist()
            where = self.index.get(part)  # report positions in the whole dataset
            result["misclassified"] = [
                {"index": int(where[i]) if where is not None else i, "label": int(y[i]),
                 "pred": int(p[i])} for i in wrong]
        return result
