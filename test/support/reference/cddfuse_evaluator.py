"""Test-only reference: the CDDFuse fusion metrics, computed the slow, literal way.

Source of the definitions: ``utils/Evaluator.py`` of github.com/Zhaozixiang1228/MMIF-CDDFuse
(commit 40de0585, MIT licence, (c) Zixiang Zhao et al.), evaluated with the versions it pins
(scikit-image 0.19.2, scikit-learn 1.1.3, scipy 1.7.3). This file restates each definition
step by step with the same library calls the original makes (``scipy.signal.convolve2d``,
``sklearn.metrics.mutual_info_score``, ``skimage.metrics.structural_similarity``), including
its quirks, so that ``ivif_ros.metrics.fusion`` (vectorised) can be checked against it. It is
not used by the package.

The one deliberate change: scikit-image >= 0.21 refuses float images without ``data_range``;
0.19.2 took it from the float dtype range (-1, 1), i.e. 2, so ``data_range=2`` is passed.

Inputs, as CDDFuse reads them: float32 grey images on 0..255 with integer values
(``np.round(cv2.cvtColor(BGR float32, COLOR_BGR2GRAY))``).
"""

import math

import numpy as np
import sklearn.metrics as skm
from scipy.signal import convolve2d
from skimage.metrics import structural_similarity


def EN(img):
    levels = np.uint8(np.round(img)).flatten()
    p = np.bincount(levels) / levels.shape[0]
    return -sum(p * np.log2(p + (p == 0)))


def SD(img):
    return np.std(img)


def SF(img):
    return np.sqrt(np.mean((img[:, 1:] - img[:, :-1]) ** 2) + np.mean((img[1:, :] - img[:-1, :]) ** 2))


def AG(img):
    gx, gy = np.zeros_like(img), np.zeros_like(img)
    gx[:, 0] = img[:, 1] - img[:, 0]
    gx[:, -1] = img[:, -1] - img[:, -2]
    gx[:, 1:-1] = (img[:, 2:] - img[:, :-2]) / 2
    gy[0, :] = img[1, :] - img[0, :]
    gy[-1, :] = img[-1, :] - img[-2, :]
    gy[1:-1, :] = (img[2:, :] - img[:-2, :]) / 2
    return np.mean(np.sqrt((gx**2 + gy**2) / 2))


def MI(f, a, b):
    return skm.mutual_info_score(f.flatten(), a.flatten()) + skm.mutual_info_score(f.flatten(), b.flatten())


def _corr(x, y):
    return np.sum((x - x.mean()) * (y - y.mean())) / np.sqrt(np.sum((x - x.mean()) ** 2) * np.sum((y - y.mean()) ** 2))


def SCD(f, a, b):
    return _corr(a, f - b) + _corr(b, f - a)


def _matlab_gaussian(n):
    """fspecial('gaussian', n, n/5)."""
    sd = n / 5.0
    m = (n - 1.0) / 2.0
    y, x = np.ogrid[-m : m + 1, -m : m + 1]
    h = np.exp(-(x * x + y * y) / (2.0 * sd * sd))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h / h.sum()


def _vifp(ref, dist):
    sigma_nsq, eps = 2, 1e-10
    num = den = 0.0
    for scale in range(1, 5):
        win = np.rot90(_matlab_gaussian(2 ** (4 - scale + 1) + 1), 2)
        if scale > 1:
            ref = convolve2d(ref, win, mode="valid")[::2, ::2]
            dist = convolve2d(dist, win, mode="valid")[::2, ::2]
        mu1 = convolve2d(ref, win, mode="valid")
        mu2 = convolve2d(dist, win, mode="valid")
        sigma1_sq = convolve2d(ref * ref, win, mode="valid") - mu1 * mu1
        sigma2_sq = convolve2d(dist * dist, win, mode="valid") - mu2 * mu2
        sigma12 = convolve2d(ref * dist, win, mode="valid") - mu1 * mu2
        sigma1_sq[sigma1_sq < 0] = 0
        sigma2_sq[sigma2_sq < 0] = 0
        g = sigma12 / (sigma1_sq + eps)
        sv_sq = sigma2_sq - g * sigma12
        g[sigma1_sq < eps] = 0
        sv_sq[sigma1_sq < eps] = sigma2_sq[sigma1_sq < eps]
        sigma1_sq[sigma1_sq < eps] = 0
        g[sigma2_sq < eps] = 0
        sv_sq[sigma2_sq < eps] = 0
        sv_sq[g < 0] = sigma2_sq[g < 0]
        g[g < 0] = 0
        sv_sq[sv_sq <= eps] = eps
        num += np.sum(np.log10(1 + g * g * sigma1_sq / (sv_sq + sigma_nsq)))
        den += np.sum(np.log10(1 + sigma1_sq / sigma_nsq))
    vifp = num / den
    return 1.0 if np.isnan(vifp) else vifp


def VIFF(f, a, b):
    return _vifp(a, f) + _vifp(b, f)


def _qabf_gradients(img):
    h1 = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]).astype(np.float32)
    h3 = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]).astype(np.float32)
    sx = convolve2d(img, h3, mode="same")
    sy = convolve2d(img, h1, mode="same")
    g = np.sqrt(sx * sx + sy * sy)
    a = np.zeros_like(img)
    a[sx == 0] = math.pi / 2
    a[sx != 0] = np.arctan(sy[sx != 0] / sx[sx != 0])
    return g, a


def _qabf_preservation(a_src, g_src, a_f, g_f):
    tg, kg, dg, ta, ka, da = 0.9994, -15, 0.5, 0.9879, -22, 0.8
    ratio = np.zeros_like(a_src)
    ratio[g_src > g_f] = g_f[g_src > g_f] / g_src[g_src > g_f]
    ratio[g_src == g_f] = g_f[g_src == g_f]
    ratio[g_src < g_f] = g_src[g_src < g_f] / g_f[g_src < g_f]
    angle = 1 - np.abs(a_src - a_f) / (math.pi / 2)
    return tg / (1 + np.exp(kg * (ratio - dg))) * (ta / (1 + np.exp(ka * (angle - da))))


def Qabf(f, a, b):
    g_a, a_a = _qabf_gradients(a)
    g_b, a_b = _qabf_gradients(b)
    g_f, a_f = _qabf_gradients(f)
    q_af = _qabf_preservation(a_a, g_a, a_f, g_f)
    q_bf = _qabf_preservation(a_b, g_b, a_f, g_f)
    return np.sum(q_af * g_a + q_bf * g_b) / np.sum(g_a + g_b)


def SSIM(f, a, b):
    return structural_similarity(f, a, data_range=2) + structural_similarity(f, b, data_range=2)


def all_metrics(f, a, b):
    """The nine metrics keyed as ``ivif_ros.metrics.fusion.METRIC_NAMES``."""
    return {
        "EN": EN(f),
        "SD": SD(f),
        "SF": SF(f),
        "AG": AG(f),
        "MI": MI(f, a, b),
        "SCD": SCD(f, a, b),
        "VIF": VIFF(f, a, b),
        "Qabf": Qabf(f, a, b),
        "SSIM": SSIM(f, a, b),
    }
