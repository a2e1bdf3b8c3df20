"""Reference checks of the custom modules (runtime/catalog/modules.py).

Each module is compared with a torch oracle or with its textbook formula written
out plainly (explicit loops on tiny cases), in float64 so tolerances can be tight.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from runtime.catalog import modules as M
from runtime.catalog.convolution import LENET5_C3_TABLE

@pytest.fixture(autouse=True)
def _float64_and_seed():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(old)



def close(a, b, tol=1e-9):
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def windows(x, k, s, pad):
    """All pooling windows of a (N, C, H, W) tensor: (N, C, OH, OW, kh*kw), zero padded."""
    x = F.pad(x, (pad[1], pad[1], pad[0], pad[0]))
    return x.unfold(2, k[0], s[0]).unfold(3, k[1], s[1]).flatten(-2)


# ---- pooling -----------------------------------------------------------------------------

@pytest.mark.parametrize("k, s, pad", [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)),
                                       ((2, 3), (1, 2), (1, 0))])
def test_l2_pool_formula(k, s, pad):
    """h[n] = (1/n) sqrt(sum_{i in N(n)} h~[i]^2), n = the window size."""
    x = torch.randn(2, 3, 7, 8)
    got = M.L2Pool(2, k, s, pad)(x)
    n = k[0] * k[1]
    want = windows(x, k, s, pad).pow(2).sum(-1).sqrt() / n
    close(got, want, 1e-6)  # the module adds 1e-12 under the root for a finite gradient
    if pad == (0, 0):  # torch's power-average pool is the same root of the sum of squares
        close(got, F.lp_pool2d(x, 2, k, s) / n, 1e-6)


def test_l2_pool_1d_and_gradient_at_zero():
    x = torch.randn(2, 3, 9)
    got = M.L2Pool(1, (3,), (3,), (0,))(x)
    want = x.unfold(2, 3, 3).pow(2).sum(-1).sqrt() / 3
    close(got, want, 1e-6)
    z = torch.zeros(1, 1, 4, 4, requires_grad=True)
    M.L2Pool(2, (2, 2), (2, 2), (0, 0))(z).sum().backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("k, s, pad", [((2, 2), (2, 2), (0, 0)), ((3, 3), (1, 1), (1, 1))])
def test_sum_pool_is_window_sum(k, s, pad):
    x = torch.randn(2, 3, 6, 7)
    got = M.SumPool(2, k, s, pad)(x)
    close(got, windows(x, k, s, pad).sum(-1))
    # the same as a depthwise convolution with a kernel of ones
    ones = torch.ones(3, 1, *k)
    close(got, F.conv2d(x, ones, stride=s, padding=pad, groups=3))


def test_sum_pool_1d():
    x = torch.randn(2, 4, 10)
    close(M.SumPool(1, (2,), (2,), (0,))(x), x.unfold(2, 2, 2).sum(-1))


def test_subsample_lenet_formula():
    """y_c = w_c * (sum of the 2x2 window of map c) + b_c; 2 parameters per map (S2: 12)."""
    m = M.Subsample2d(6, 2, 2)
    with torch.no_grad():
        m.weight.copy_(torch.randn(6))
        m.bias.copy_(torch.randn(6))
    x = torch.randn(2, 6, 28, 28)
    want = windows(x, (2, 2), (2, 2), (0, 0)).sum(-1) * m.weight.view(1, -1, 1, 1) \
        + m.bias.view(1, -1, 1, 1)
    close(m(x), want)
    assert m(x).shape == (2, 6, 14, 14)
    assert sum(p.numel() for p in m.parameters()) == 12


def test_global_avg_pool_and_spp():
    x = torch.randn(2, 3, 8, 8)
    close(M.GlobalAvgPool()(x), x.mean((2, 3)))
    spp = M.SpatialPyramidPool([1, 2], 2)(x)
    want = torch.cat([x.amax((2, 3)),
                      windows(x, (4, 4), (4, 4), (0, 0)).amax(-1).flatten(1)], 1)
    close(spp, want)


# ---- affine units and non-linearities --------------------------------------------------------

def test_maxout_is_max_of_affine_pieces():
    """y_i = max_j (w_ij . x + b_ij)."""
    m = M.Maxout(5, units=3, pieces=4)
    x = torch.randn(7, 5)
    W, b = m.linear.weight, m.linear.bias  # rows ordered (unit, piece)
    want = torch.stack([
        torch.stack([x @ W[i * 4 + j] + b[i * 4 + j] for j in range(4)], -1).amax(-1)
        for i in range(3)], -1)
    close(m(x), want)


def test_probit_is_the_normal_cdf():
    x = torch.linspace(-6, 6, 101)
    close(M.Probit()(x), torch.special.ndtr(x))
    assert M.Probit()(torch.tensor(0.0)) == 0.5


def test_rbf_is_squared_distance_to_centres():
    m = M.RBF(4, 10)
    x = torch.randn(6, 4)
    close(m(x), torch.cdist(x, m.centers).pow(2), 1e-8)
    with torch.no_grad():  # an input on centre i scores 0 for unit i
        assert m(m.centers[2:3])[0, 2] == 0
    assert sum(p.numel() for p in M.RBF(84, 10).parameters()) == 840  # LeNet-5 output


def test_perceptron_score_and_label():
    m = M.Perceptron(3, 2)
    x = torch.randn(5, 3)
    score, label = m(x)
    close(score, x @ m.linear.weight.T + m.linear.bias)
    assert torch.equal(label, torch.where(score >= 0, 1.0, -1.0))


def test_sign_step_and_one_hot():
    x = torch.tensor([-2.0, -0.0, 0.0, 3.0])
    assert M.Sign()(x).tolist() == [-1, 1, 1, 1]
    assert M.Sign(binary=True)(x).tolist() == [0, 1, 1, 1]
    ids = torch.tensor([[0, 2], [1, 1]])
    oh = M.OneHot(3)(ids)
    assert oh.shape == (2, 2, 3) and oh.is_floating_point()
    assert torch.equal(oh.argmax(-1), ids) and torch.equal(oh.sum(-1), torch.ones(2, 2))


def test_scale_and_one_minus():
    x = torch.randn(4, 3)
    close(M.Scale(2.0, -1.0, False)(x), 2 * x - 1)
    learnable = M.Scale(2.0, -1.0, True)
    assert len(list(learnable.parameters())) == 2
    assert len(list(M.Scale(2.0, -1.0, False).parameters())) == 0
    close(M.OneMinus()(x), 1 - x)


# ---- unusual weight sharing ------------------------------------------------------------------

@pytest.mark.parametrize("k, s, pad", [((2, 2), (1, 1), (0, 0)), ((3, 2), (2, 1), (1, 1))])
def test_locally_connected_against_explicit_loop(k, s, pad):
    """y[n,o,i,j] = b[o,i,j] + sum_{c,u,v} w[i,j,o,c,u,v] x[n,c,i*s+u,j*s+v]."""
    c_in, c_out, h, w = 2, 3, 5, 4
    m = M.LocallyConnected2d(c_in, c_out, (h, w), k, s, pad)
    x = torch.randn(2, c_in, h, w)
    xp = F.pad(x, (pad[1], pad[1], pad[0], pad[0]))
    oh, ow = m.out_hw
    weight = m.weight.detach().reshape(oh, ow, c_out, c_in, k[0], k[1])
    want = torch.zeros(2, c_out, oh, ow)
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1]]
            for o in range(c_out):
                want[:, o, i, j] = (patch * weight[i, j, o]).sum((1, 2, 3)) + m.bias[o, i, j]
    close(m(x), want.detach())
    assert sum(p.numel() for p in m.parameters()) == oh * ow * c_out * (c_in * k[0] * k[1] + 1)


def test_locally_connected_with_shared_weights_is_a_convolution():
    m = M.LocallyConnected2d(2, 3, (6, 6), (3, 3), (1, 1), (0, 0), bias=False)
    conv_w = torch.randn(3, 2, 3, 3)
    with torch.no_grad():
        m.weight.copy_(conv_w.reshape(1, 3, 18).expand_as(m.weight))
    x = torch.randn(2, 2, 6, 6)
    close(m(x), F.conv2d(x, conv_w))


@pytest.mark.parametrize("table, in_ch, stride, padding", [
    (LENET5_C3_TABLE, 6, 1, 0), ([[0], [1, 2], [0, 2]], 3, 2, 1)])
def test_table_conv_is_a_masked_conv2d(table, in_ch, stride, padding):
    m = M.SparseConv2d(in_ch, table, (5, 5) if in_ch == 6 else (3, 3), stride, padding)
    dense = m.full_weight().detach()
    mask = torch.zeros(len(table), in_ch, 1, 1)
    for o, ins in enumerate(table):
        mask[o, ins] = 1
    # every kernel outside the table is zero, every kernel in it is a parameter
    assert torch.equal(dense * (1 - mask), torch.zeros_like(dense))
    kh, kw = m.kernel
    assert m.weight.numel() == sum(len(r) for r in table) * kh * kw
    x = torch.randn(2, in_ch, 14, 14)
    random_dense = torch.randn_like(dense)
    with torch.no_grad():  # load a dense weight through the table
        m.weight.copy_(random_dense[m.rows, m.cols])
    close(m(x), F.conv2d(x, random_dense * mask, m.bias, stride, padding))
    # gradients only reach connected kernels
    y = m(x).pow(2).sum()
    y.backward()
    assert m.weight.grad.shape == m.weight.shape and (m.weight.grad != 0).any()


def test_lenet_c3_counts():
    """LeNet-5 C3: 16 maps over 6, 5x5 kernels, 1,516 trainable parameters."""
    m = M.SparseConv2d(6, LENET5_C3_TABLE, (5, 5))
    assert sum(p.numel() for p in m.parameters()) == 1516
    assert m(torch.randn(1, 6, 14, 14)).shape == (1, 16, 10, 10)


# ---- losses ------------------------------------------------------------------------------------

def test_multiclass_hinge():
    """E = sum_{j != y} max(0, s_j - s_y + margin), mean over the batch."""
    scores = torch.randn(8, 5)
    y = torch.randint(0, 5, (8,))
    for margin in (1.0, 0.3):
        got = M.MulticlassHinge(margin)(scores, y)
        # torch's multi_margin_loss divides each sample's sum by the number of classes
        close(got, F.multi_margin_loss(scores, y, margin=margin) * 5)
        want = sum(max(0.0, float(scores[n, j] - scores[n, y[n]] + margin))
                   for n in range(8) for j in range(5) if j != y[n]) / 8
        assert math.isclose(float(got), want, rel_tol=1e-9)


def test_multiclass_hinge_over_sequence():
    scores, y = torch.randn(2, 3, 4), torch.randint(0, 4, (2, 3))
    close(M.MulticlassHinge()(scores, y),
          F.multi_margin_loss(scores.reshape(6, 4), y.reshape(6)) * 4)


def test_perceptron_criterion():
    """E = sum_i max(0, -t_i f(x_i)): only misclassified samples count."""
    f = torch.tensor([[2.0], [-1.0], [0.5], [-3.0]], requires_grad=True)
    t = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]])
    loss = M.PerceptronCriterion()(f, t)
    # misclassified: sample 1 (score -1, label +1) and 2 (score 0.5, label -1)
    assert math.isclose(loss.item(), (1.0 + 0.5) / 4)
    loss.backward()
    assert f.grad.flatten().tolist() == [0.0, -0.25, 0.25, 0.0]  # -t_i / N where wrong


def test_triplet_loss_squared_distances():
    """E = [||a - p||^2 - ||a - n||^2 + alpha]_+, mean over the batch."""
    a, p, n = torch.randn(6, 4), torch.randn(6, 4), torch.randn(6, 4)
    got = M.TripletLoss(0.5)(a, p, n)
    want = F.triplet_margin_with_distance_loss(
        a, p, n, distance_function=lambda u, v: (u - v).pow(2).sum(-1), margin=0.5)
    close(got, want)
    # far enough: zero loss
    assert float(M.TripletLoss(1.0)(a, a, a + 10)) == 0.0


def test_squared_error_cross_entropy_bce():
    y, t = torch.randn(5, 3), torch.randn(5, 3)
    close(M.SquaredError()(y, t), F.mse_loss(y, t, reduction="sum") / 2 / 5)
    logits, c = torch.randn(5, 4), torch.randint(0, 4, (5,))
    close(M.CrossEntropy()(logits, c), -F.log_softmax(logits, 1)[range(5), c].mean())
    close(M.CrossEntropy(0.2)(logits, c), F.cross_entropy(logits, c, label_smoothing=0.2))
    seq, cs = torch.randn(2, 3, 4), torch.randint(0, 4, (2, 3))
    close(M.CrossEntropy()(seq, cs), F.cross_entropy(seq.reshape(6, 4), cs.reshape(6)))
    probs_t = torch.rand(5, 3)
    f = torch.sigmoid(logits[:, :3])
    want = -(probs_t * f.log() + (1 - probs_t) * (1 - f).log()).sum(1).mean()
    close(M.BinaryCrossEntropy(True)(logits[:, :3], probs_t), want)
    close(M.BinaryCrossEntropy(False)(f, probs_t), want)


# ---- wiring -------------------------------------------------------------------------------------

def test_wiring_modules():
    a, b, c = torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 3)
    close(M.Add()(a, b, c), a + b + c)
    close(M.Multiply()(a, b, c), a * b * c)
    close(M.Concat(1)(a, b), torch.cat([a, b], 1))
    parts = M.Split([1, 2], 1)(a)
    assert isinstance(parts, tuple) and [p.shape[1] for p in parts] == [1, 2]
    assert M.Reshape([3, 1])(a).shape == (2, 3, 1)
    assert M.Reshape([-1])(torch.randn(2, 3, 4)).shape == (2, 12)
    assert M.Transpose(1, 2)(torch.randn(2, 3, 4)).shape == (2, 4, 3)
