"""FID, KID, PR/DC and IS against independent references on the same numbers."""

from __future__ import annotations

import numpy as np
import prdc as prdc_ref
import pytest
import scipy.linalg
from scipy.stats import entropy

from gantl.errors import MetricError
from gantl.metrics import fid, isc, kid, prdc


def reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    """Textbook FID in float64: eigen-decomposition based square root of S1^(1/2) S2 S1^(1/2)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = root1 @ s2 @ root1
    w2 = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(w2, 0, None)).sum())


def test_fid_matches_float64_reference():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 32))
    b = rng.normal(loc=0.3, scale=1.2, size=(300, 32)) @ rng.normal(size=(32, 32)) * 0.3
    ours = fid.fid_from_features(a, b)
    ref = reference_fid(a, b)
    assert ours == pytest.approx(ref, rel=1e-6)
    # and the plain scipy formula
    s, _ = scipy.linalg.sqrtm(np.cov(a, rowvar=False) @ np.cov(b, rowvar=False), disp=False)
    plain = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(np.cov(a, rowvar=False) + np.cov(b, rowvar=False)
                                                            - 2 * s.real)
    assert ours == pytest.approx(plain, rel=1e-6)


def test_fid_of_identical_sets_is_zero_and_symmetric():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(150, 16)) + 0.5
    assert fid.fid_from_features(a, a) == pytest.approx(0.0, abs=1e-6)
    assert fid.fid_from_features(a, b) == pytest.approx(fid.fid_from_features(b, a), rel=1e-6)


def test_fid_with_fewer_samples_than_dimensions_stays_finite():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(10, 64)), rng.normal(size=(12, 64))
    value = fid.fid_from_features(a, b)
    assert np.isfinite(value) and value > 0


@pytest.mark.parametrize("n_real,n_fake", [(600, 120), (120, 600), (90, 70)])
def test_low_rank_fid_path_equals_the_full_square_root(n_real: int, n_fake: int):
    """With fewer samples than dimensions on one side, the exact n x n eigenvalue path gives the
    same FID as the eigen reference and as scipy's sqrtm of the full D x D product."""
    rng = np.random.default_rng(3)
    d = 256
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    a = np.abs(rng.normal(size=(n_real, d)) @ mix)  # non-negative, correlated: like pool3 features
    b = np.abs(rng.normal(loc=0.2, size=(n_fake, d)) @ mix) * 1.1
    ours = fid.fid_from_features(a, b)
    assert ours == pytest.approx(reference_fid(a, b), rel=1e-6)
    s, _ = scipy.linalg.sqrtm(np.cov(a, rowvar=False) @ np.cov(b, rowvar=False), disp=False)
    plain = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(np.cov(a, rowvar=False) + np.cov(b, rowvar=False)
                                                            - 2 * s.real)
    assert ours == pytest.approx(plain, rel=1e-6)
    assert ours == pytest.approx(fid.frechet_distance(*fid.feature_stats(a), *fid.feature_stats(b)), rel=1e-6)


def test_fid_rejects_mismatched_shapes():
    with pytest.raises(MetricError, match="same feature extractor"):
        fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def reference_kid_subset(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² written out with explicit pair sums."""
    m, d = x.shape
    k = lambda u, v: (u @ v / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_direct_computation():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(30, 8)), rng.normal(loc=0.4, size=(25, 8))
    ours = kid.kernel_inception_distance(real, fake, num_subsets=3, subset_size=20, seed=7)
    sel = np.random.default_rng(7)
    expected = []
    for _ in range(3):
        xs = real[sel.choice(30, 20, replace=False)]
        ys = fake[sel.choice(25, 20, replace=False)]
        expected.append(reference_kid_subset(xs, ys))
    assert ours == pytest.approx(np.mean(expected), rel=1e-9)
    assert ours > 0


def test_kid_shrinks_subset_with_warning_instead_of_crashing():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(40, 8)), rng.normal(size=(12, 8))
    with pytest.warns(UserWarning, match="subset size shrinks from 1000 to 12"):
        value = kid.kernel_inception_distance(real, fake, num_subsets=5)
    assert np.isfinite(value)
    with pytest.raises(MetricError, match="at least 2"):
        kid.kernel_inception_distance(real, fake[:1])


def test_precision_recall_density_coverage_match_prdc_package():
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(120, 10)), rng.normal(loc=0.3, size=(100, 10))
    for k in (3, 5):
        ref = prdc_ref.compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
        p, r = prdc.precision_recall(real, fake, k=k)
        d, c = prdc.density_coverage(real, fake, k=k)
        assert (p, r) == pytest.approx((ref["precision"], ref["recall"]), abs=1e-12)
        assert (d, c) == pytest.approx((ref["density"], ref["coverage"]), abs=1e-12)
    assert 0 < p < 1 and 0 < r < 1


def test_inception_score_matches_direct_numpy():
    rng = np.random.default_rng(6)
    logits = rng.normal(scale=3.0, size=(100, 1008))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    scores = []
    for part in np.array_split(probs, 10):
        py = part.mean(0)
        scores.append(np.exp(np.mean([entropy(p, py) for p in part])))
    mean, std = isc.inception_score(logits, splits=10)
    assert mean == pytest.approx(np.mean(scores), rel=1e-9)
    assert std == pytest.approx(np.std(scores), rel=1e-6)


def test_inception_score_extremes():
    # one confident class per sample, spread evenly over 10 classes: IS = 10; constant class: IS = 1
    eye = np.eye(10)[np.tile(np.arange(10), 10)] * 50.0
    assert isc.inception_score(eye, splits=1)[0] == pytest.approx(10.0, rel=1e-6)
    same = np.tile(np.eye(10)[0] * 50.0, (100, 1))
    assert isc.inception_score(same, splits=10)[0] == pytest.approx(1.0, rel=1e-6)
