"""The README's ```python blocks run as written, in order, in one namespace: the bundled
model is swapped for a tiny random one and `piece.png` is a small picture in the working
folder, so that the examples cannot rot."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from conftest import smooth_image
from model_fixtures import make_model_dir

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def test_readme_has_python_examples():
    assert len(python_blocks(README.read_text())) >= 1


def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    import nuwa_inf.assets
    import nuwa_inf.infer.bundle

    tiny = make_model_dir(tmp_path / "tiny_model")
    video = make_model_dir(tmp_path / "tiny_video", extent_t=1, rope_time_dims=4)   # same tokenizer (seed 0)
    (video / "transformer").rename(tiny / "video")
    for module in (nuwa_inf.assets, nuwa_inf.infer.bundle):  # what "the bundled model" resolves to
        monkeypatch.setattr(module, "default_model_dir", lambda: tiny)
    work = tmp_path / "work"
    work.mkdir()
    Image.fromarray(smooth_image(192, 256, seed=1)).save(work / "piece.png")
    monkeypatch.chdir(work)
    namespace: dict = {"__name__": "readme"}
    for number, block in enumerate(python_blocks(README.read_text()), 1):
        try:
            exec(compile(block, f"README.md python block {number}", "exec"), namespace)
        except Exception as err:  # show which block broke, with the README's own line numbers
            pytest.fail(f"README python block {number} failed: {type(err).__name__}: {err}")
    printed = capsys.readouterr().out
    assert "refused:" in printed and "tokenizer round trip" in printed
