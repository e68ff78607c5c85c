"""The attribute probe reads scene attributes from real scrolls, and can fail: on shuffled labels it is at chance."""
from __future__ import annotations

import numpy as np
import pytest

from nuwa_inf.data.procedural import render_scroll
from nuwa_inf.eval.attribute_probe import (
    ATTRIBUTES,
    FEATURE_NAMES,
    AttributeProbe,
    chance,
    fit_logistic,
    image_features,
    logits,
    region_features,
    uniform_attributes,
)

NAMES = ("palette", "time", "snow", "water")
WIDTH, HEIGHT = 256, 128  # small renders (~30 ms each); the benchmark uses 1024x512


def real_set(base: int, count: int) -> tuple[np.ndarray, list[dict]]:
    attrs = [uniform_attributes(base + i) for i in range(count)]
    features = [image_features(render_scroll(WIDTH, HEIGHT, base + i, attrs=a)) for i, a in enumerate(attrs)]
    return np.asarray(features), attrs


@pytest.fixture(scope="module")
def sets():
    return real_set(200000, 64), real_set(300000, 48)


def test_the_probe_reads_held_out_real_scrolls_well_above_chance(sets):
    (train_x, train_a), (test_x, test_a) = sets
    accuracy = AttributeProbe.fit(train_x, train_a, NAMES, grid=(1e-2,)).accuracy(test_x, test_a)
    for name in NAMES:
        assert accuracy[name] >= chance(name) + 0.3, (name, accuracy)
    assert min(accuracy["palette"], accuracy["time"], accuracy["snow"]) >= 0.85, accuracy


def test_the_probe_trained_on_shuffled_labels_is_at_chance(sets):
    (train_x, train_a), (test_x, test_a) = sets
    shuffled = [train_a[j] for j in np.random.default_rng(0).permutation(len(train_a))]
    accuracy = AttributeProbe.fit(train_x, shuffled, NAMES, grid=(1e-2,)).accuracy(test_x, test_a)
    for name in NAMES:
        assert accuracy[name] <= chance(name) + 0.3, (name, accuracy)
    assert np.mean([accuracy[n] - chance(n) for n in NAMES]) <= 0.15, accuracy


def test_a_saved_probe_predicts_the_same_values(sets, tmp_path):
    (train_x, train_a), (test_x, _) = sets
    probe = AttributeProbe.fit(train_x, train_a, ("time", "water"), grid=(1e-2,))
    probe.save(tmp_path / "probe.npz")
    loaded = AttributeProbe.load(tmp_path / "probe.npz")
    assert loaded.predict(test_x) == probe.predict(test_x)
    one = loaded.predict(test_x[0])
    assert set(one) == {"time", "water"} and one["time"] in ATTRIBUTES["time"] and one["water"] in ATTRIBUTES["water"]


def test_features_have_one_length_for_any_size_and_region():
    image = render_scroll(768, 256, seed=5)
    full, region = image_features(image), region_features(image, 256, 768)
    assert full.shape == region.shape == (len(FEATURE_NAMES),)
    assert np.isfinite(full).all() and not np.allclose(full, region)
    assert image_features(image[:40, :100]).shape == full.shape
    with pytest.raises(ValueError):
        image_features(image[:4])


def test_logistic_regression_fits_separable_classes():
    rng = np.random.default_rng(0)
    y = rng.integers(3, size=90)
    x = rng.normal(size=(90, 2)) + 4 * np.eye(3)[y][:, :2] - 2 * (y == 2)[:, None]
    weights = fit_logistic(x, y, classes=3, l2=1e-3)
    assert weights.shape == (3, 3)
    assert (logits(x, weights).argmax(axis=1) == y).mean() > 0.95


def test_uniform_attributes_are_valid_and_cover_every_value():
    drawn = [uniform_attributes(s) for s in range(60)]
    for name, values in ATTRIBUTES.items():
        assert {a[name] for a in drawn} == set(values), name
