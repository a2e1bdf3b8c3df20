"""Small torch modules for node types that torch.nn lacks.

Each is plain, self-contained torch code (no Netbuilder imports), so the readable
PyTorch export can copy it verbatim. Shapes in comments include the batch N.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# ---- wiring -------------------------------------------------------------------------


class Add(nn.Module):
    """y = x1 + x2 + ... (skip / residual connections)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Multiply(nn.Module):
    """y = x1 * x2 * ... element-wise (gates)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Concat(nn.Module):
    """Concatenate along ``dim`` (a torch dim, batch included)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)


class OneMinus(nn.Module):
    """y = 1 - x (the update-gate complement of a GRU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1 - x


class Scale(nn.Module):
    """y = a * x + b with scalars a and b, fixed or learned."""

    def __init__(self, scale: float, shift: float, learnable: bool):
        super().__init__()
        a, b = torch.tensor(float(scale)), torch.tensor(float(shift))
        if learnable:
            self.scale, self.shift = nn.Parameter(a), nn.Parameter(b)
        else:
            self.register_buffer("scale", a)
            self.register_buffer("shift", b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class Split(nn.Module):
    """Split along ``dim`` into pieces of the given sizes."""

    def __init__(self, sizes: list[int], dim: int):
        super().__init__()
        self.sizes, self.dim = list(sizes), dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.split(x, self.sizes, dim=self.dim))


class Reshape(nn.Module):
    """Reshape each sample to ``shape`` (batch kept)."""

    def __init__(self, shape: list[int]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape((x.shape[0],) + self.shape)


WEIGHT_INITS = ("default", "identity", "xavier_uniform", "kaiming_normal", "orthogonal",
                "zeros")


def init_linear_(linear: nn.Linear, init: str = "default") -> nn.Linear:
    """Sets a Linear layer's initial weights by name, in place (Dense's ``init``).

    default: nn.Linear's own (uniform, bias included), left as built; identity: W = I (a
    square matrix; with ReLU in a recurrence, the IRNN of Le et al.); xavier_uniform:
    Glorot and Bengio's U(-a, a), a = sqrt(6 / (fan_in + fan_out)); kaiming_normal: He et
    al.'s N(0, 2 / fan_in) (for ReLU); orthogonal: a random orthogonal matrix (Saxe et
    al.); zeros: W = 0. Each but default sets the bias to 0.
    """
    if init == "default" or linear.weight.device.type == "meta":  # meta: no values to set
        return linear
    w = linear.weight
    with torch.no_grad():
        if init == "identity":
            if w.shape[0] != w.shape[1]:
                raise ValueError(f"init='identity' needs a square weight, not "
                                 f"{w.shape[0]} x {w.shape[1]}")
            nn.init.eye_(w)
        elif init == "xavier_uniform":
            nn.init.xavier_uniform_(w)
        elif init == "kaiming_normal":
            nn.init.kaiming_normal_(w, nonlinearity="relu")
        elif init == "orthogonal":
            nn.init.orthogonal_(w)
        elif init == "zeros":
            nn.init.zeros_(w)
        else:
            raise ValueError(f"unknown init {init!r}; expected one of {', '.join(WEIGHT_INITS)}")
        if linear.bias is not None:
            nn.init.zeros_(linear.bias)
    return linear


class OneHot(nn.Module):
    """1-of-k coding of integer ids: (N, ...) -> (N, ..., k) floats."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.one_hot(x.long(), self.num_classes).float()


# ---- non-linearities --------------------------------------------------------------


class Sign(nn.Module):
    """Step output: y = +1 if x >= 0 else -1 (or 1/0 with binary=True). Zero gradient."""

    def __init__(self, binary: bool = False):
        super().__init__()
        self.binary = binary

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = (x >= 0).to(x.dtype)
        return pos if self.binary else 2 * pos - 1


class Probit(nn.Module):
    """Gaussian CDF: y = (1 + erf(x / sqrt 2)) / 2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (1 + torch.erf(x / math.sqrt(2.0)))


class Maxout(nn.Module):
    """y_i = max_j (w_ij . x + b_ij): ``units`` outputs, each the max of ``pieces`` affines."""

    def __init__(self, in_features: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x)  # (N, ..., units * pieces)
        z = z.reshape(z.shape[:-1] + (self.units, self.pieces))
        return z.max(dim=-1).values


class Perceptron(nn.Module):
    """Affine unit with a sign output: score = w.x + b, label = sign(score)."""

    def __init__(self, in_features: int, units: int):
        super().__init__()
        self.linear = nn.Linear(in_features, units)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        score = self.linear(x)
        return score, 2 * (score >= 0).to(score.dtype) - 1


class RBF(nn.Module):
    """Radial-basis output units (LeNet-5): y_i = sum_j (x_j - w_ij)^2."""

    def __init__(self, in_features: int, units: int):
        super().__init__()
        self.centers = nn.Parameter(torch.empty(units, in_features))
        nn.init.uniform_(self.centers, -1.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, 1, D) - (units, D) -> (N, units, D) -> (N, units)
        return (x.unsqueeze(-2) - self.centers).pow(2).sum(-1)


# ---- pooling ------------------------------------------------------------------------


def _pool_fn(ndim: int, kind: str):
    return {(1, "max"): F.max_pool1d, (2, "max"): F.max_pool2d,
            (1, "avg"): F.avg_pool1d, (2, "avg"): F.avg_pool2d}[(ndim, kind)]


class SumPool(nn.Module):
    """Sum over each window: the average times the window size."""

    def __init__(self, ndim: int, kernel, stride, padding):
        super().__init__()
        self.ndim, self.kernel, self.stride, self.padding = ndim, kernel, stride, padding
        self.window = math.prod(kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = _pool_fn(self.ndim, "avg")(x, self.kernel, self.stride, self.padding,
                                         count_include_pad=True)
        return avg * self.window


class AdaptiveAvgPool(nn.Module):
    """torch's adaptive average pooling to ``size`` (one number per spatial axis): window
    i of an axis of length L covers [floor(i L / o), ceil((i + 1) L / o)).

    Runs ``F.adaptive_avg_pool1d/2d``. Inside an ONNX export, which has no such operator
    when L is not a multiple of o (nor when L varies), the same windows are averaged from
    a running sum along each axis (CumSum and Gather: any L, exact up to rounding)."""

    def __init__(self, ndim: int, size):
        super().__init__()
        self.ndim, self.size = ndim, tuple(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting():  # (TorchScript compiles only the other branch)
            if torch.onnx.is_in_onnx_export():
                return self._running_sum_means(x)
        if self.ndim == 1:
            return F.adaptive_avg_pool1d(x, self.size[0])
        return F.adaptive_avg_pool2d(x, self.size[-2:])

    @torch.jit.unused
    def _running_sum_means(self, x: torch.Tensor) -> torch.Tensor:
        for axis, out in zip(range(x.dim() - self.ndim, x.dim()), self.size):
            x = _window_means(x, axis, out)
        return x


def _window_means(x: torch.Tensor, axis: int, out: int) -> torch.Tensor:
    """Means of adaptive pooling's ``out`` windows along ``axis``, from a running sum."""
    length = x.shape[axis]
    i = torch.arange(out, device=x.device)
    start = torch.div(i * length, out, rounding_mode="floor")
    end = torch.div((i + 1) * length + out - 1, out, rounding_mode="floor")
    zero = torch.zeros_like(x.narrow(axis, 0, 1))
    total = torch.cat([zero, torch.cumsum(x, axis)], axis)
    width = (end - start).to(x.dtype)
    shape = [1] * x.dim()
    shape[axis] = out
    return (total.index_select(axis, end) - total.index_select(axis, start)) / width.reshape(shape)


class L2Pool(nn.Module):
    """h[n] = (1/n) sqrt(sum_{i in N(n)} h~[i]^2) over each window of n elements."""

    def __init__(self, ndim: int, kernel, stride, padding):
        super().__init__()
        self.ndim, self.kernel, self.stride, self.padding = ndim, kernel, stride, padding
        self.window = math.prod(kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean_sq = _pool_fn(self.ndim, "avg")(x * x, self.kernel, self.stride, self.padding,
                                             count_include_pad=True)
        # sqrt(window * mean) / window; the epsilon keeps the gradient finite at 0
        return torch.sqrt(mean_sq * self.window + 1e-12) / self.window


class GlobalAvgPool(nn.Module):
    """Mean over all positions: (N, C, *spatial) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(-1)


class SpatialPyramidPool(nn.Module):
    """Max-pool into fixed grids (levels x levels each) and concatenate: (N, C*sum(l^2))."""

    def __init__(self, levels: list[int], ndim: int):
        super().__init__()
        self.levels, self.ndim = list(levels), ndim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = F.adaptive_max_pool2d if self.ndim == 2 else F.adaptive_max_pool1d
        return torch.cat([pool(x, level).flatten(1) for level in self.levels], dim=1)


class Subsample2d(nn.Module):
    """LeNet-5 trainable sub-sampling: y_c = w_c * sum_window(x_c) + b_c, one w, b per map."""

    def __init__(self, channels: int, kernel: int, stride: int):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.avg_pool2d(x, self.kernel, self.stride) * (self.kernel * self.kernel)
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


# ---- convolutions with unusual weight sharing ---------------------------------------


class LocallyConnected2d(nn.Module):
    """A convolution whose filters are not shared: one weight set per output position.

    y[n, o, i, j] = b[o, i, j] + sum_{c, u, v} w[i, j, o, c, u, v] x[n, c, i*s+u, j*s+v]
    """

    def __init__(self, in_channels: int, out_channels: int, in_hw: tuple[int, int],
                 kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                 bias: bool = True):
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding
        oh = (in_hw[0] + 2 * padding[0] - kernel[0]) // stride[0] + 1
        ow = (in_hw[1] + 2 * padding[1] - kernel[1]) // stride[1] + 1
        self.out_hw = (oh, ow)
        fan_in = in_channels * kernel[0] * kernel[1]
        bound = 1 / math.sqrt(fan_in)
        self.weight = nn.Parameter(torch.empty(oh * ow, out_channels, fan_in).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels, oh, ow).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols = F.unfold(x, self.kernel, padding=self.padding, stride=self.stride)  # (N, C*k*k, L)
        y = torch.einsum("nfl,lof->nol", cols, self.weight)  # (N, O, L)
        y = y.reshape(y.shape[0], y.shape[1], *self.out_hw)
        return y + self.bias if self.bias is not None else y


class SparseConv2d(nn.Module):
    """A 2-D convolution whose output map o sees only the input maps table[o].

    LeNet-5's C3 is the classic case: 16 maps, each over a subset of the 6 maps of S2.
    Only the connected kernels are parameters, so the parameter count is exact.
    """

    def __init__(self, in_channels: int, table: list[list[int]], kernel: tuple[int, int],
                 stride: int = 1, padding: int = 0):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, len(table)
        self.kernel, self.stride, self.padding = kernel, stride, padding
        rows = [o for o, ins in enumerate(table) for _ in ins]
        cols = [c for ins in table for c in ins]
        self.register_buffer("rows", torch.tensor(rows, dtype=torch.long), persistent=False)
        self.register_buffer("cols", torch.tensor(cols, dtype=torch.long), persistent=False)
        fan_in = [len(ins) * kernel[0] * kernel[1] for ins in table]
        bound = torch.tensor([1 / math.sqrt(f) for f in fan_in])
        w = (torch.rand(len(rows), *kernel) * 2 - 1) * bound[self.rows].view(-1, 1, 1)
        self.weight = nn.Parameter(w)  # (connections, kh, kw)
        self.bias = nn.Parameter((torch.rand(len(table)) * 2 - 1) * bound)

    def full_weight(self) -> torch.Tensor:
        w = self.weight.new_zeros(self.out_channels, self.in_channels, *self.kernel)
        return w.index_put((self.rows, self.cols), self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.full_weight(), self.bias, self.stride, self.padding)


# ---- losses -------------------------------------------------------------------------
# Every loss returns the mean over the batch (and over time steps for sequences) of
# the per-sample loss in the formula.


def _flatten_leading(pred: torch.Tensor, target: torch.Tensor):
    """(N, T, C) with (N, T) -> (N*T, C) with (N*T,): sequence losses over all steps."""
    return pred.reshape(-1, pred.shape[-1]), target.reshape(-1)


class SquaredError(nn.Module):
    """E = 1/2 sum_k (y_k - t_k)^2 per sample, averaged over the batch."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        diff = (pred - target.to(pred.dtype)).reshape(pred.shape[0], -1)
        return 0.5 * diff.pow(2).sum(1).mean()


class CrossEntropy(nn.Module):
    """E = -log softmax(a)_c for class c, averaged (logits in, class ids as target).

    ``ignore_index`` >= 0 names a padding class: targets equal to it add nothing to the
    loss and the average is over the other positions (-1: every position counts)."""

    def __init__(self, label_smoothing: float = 0.0, ignore_index: int = -1):
        super().__init__()
        self.label_smoothing = label_smoothing
        self.ignore_index = ignore_index

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.dim() != 2 or target.dim() != 1:  # (N, T, C): every step counts
            logits, target = _flatten_leading(logits, target)
        return F.cross_entropy(logits, target.long(), label_smoothing=self.label_smoothing,
                               ignore_index=self.ignore_index if self.ignore_index >= 0 else -100)


class BinaryCrossEntropy(nn.Module):
    """E = -sum_k t_k log f_k + (1 - t_k) log(1 - f_k), averaged over the batch.

    With ``from_logits`` the input is the pre-sigmoid score (numerically stable).
    """

    def __init__(self, from_logits: bool = True):
        super().__init__()
        self.from_logits = from_logits

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.to(pred.dtype)
        fn = F.binary_cross_entropy_with_logits if self.from_logits else F.binary_cross_entropy
        per = fn(pred, target, reduction="none")
        return per.reshape(pred.shape[0], -1).sum(1).mean()


class MulticlassHinge(nn.Module):
    """E = sum_{j != y} max(0, s_j - s_y + margin), averaged over the batch."""

    def __init__(self, margin: float = 1.0):
        super().__init__()
        self.margin = margin

    def forward(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        scores, target = _flatten_leading(scores, target)
        target = target.long()
        correct = scores.gather(1, target.unsqueeze(1))  # (N, 1)
        margins = (scores - correct + self.margin).clamp(min=0)
        mask = torch.ones_like(margins).scatter(1, target.unsqueeze(1), 0.0)
        return (margins * mask).sum(1).mean()


class PerceptronCriterion(nn.Module):
    """E = sum_i max(0, -t_i f(x_i)) with targets t in {-1, +1}, averaged over the batch."""

    def forward(self, score: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        per = (-target.to(score.dtype) * score).clamp(min=0)
        return per.reshape(score.shape[0], -1).sum(1).mean()


class TripletLoss(nn.Module):
    """E = [||f(a) - f(p)||^2 - ||f(a) - f(n)||^2 + alpha]_+, averaged over the batch."""

    def __init__(self, margin: float = 1.0):
        super().__init__()
        self.margin = margin

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        d_pos = (anchor - positive).pow(2).reshape(anchor.shape[0], -1).sum(1)
        d_neg = (anchor - negative).pow(2).reshape(anchor.shape[0], -1).sum(1)
        return (d_pos - d_neg + self.margin).clamp(min=0).mean()


class Transpose(nn.Module):
    """Swap two axes (torch dims, batch included)."""

    def __init__(self, dim0: int, dim1: int):
        super().__init__()
        self.dim0, self.dim1 = dim0, dim1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(self.dim0, self.dim1)
