"""Tiny untrained model directories for engine tests (random weights, deterministic)."""
from __future__ import annotations

from pathlib import Path

import torch

from nuwa_inf.config import from_preset
from nuwa_inf.model.config import MODEL_PRESETS, ModelConfig
from nuwa_inf.model.transformer import LocalTransformer
from nuwa_inf.tokenizer.config import TOKENIZER_PRESETS, TokenizerConfig
from nuwa_inf.tokenizer.vqgan import VQGAN


def make_model_dir(path: Path, seed: int = 0, text_vocab: list[str] | None = None, live_memory: bool = True,
                   **model_overrides) -> Path:
    """`text_vocab`: give the transformer a text encoder over these words; `live_memory`: give its
    condition memory random output projections (False: zero, as a model just given a memory)."""
    torch.manual_seed(seed)
    if text_vocab is not None:
        model_overrides = {"text_len": 8, "text_vocab_size": len(text_vocab) + 2, **model_overrides}
    tokenizer = VQGAN(from_preset(TokenizerConfig, TOKENIZER_PRESETS, "tiny"))
    transformer = LocalTransformer(from_preset(ModelConfig, MODEL_PRESETS, "tiny",
                                               {"vocab_size": tokenizer.codebook_size, **model_overrides}))
    with torch.no_grad():  # make the untrained model's logits peaked enough to give varied images
        transformer.head.weight.mul_(50)
        for block in transformer.blocks:  # and its style memory in use (it starts as a no-op)
            if block.cross is not None and live_memory:
                block.cross.proj.weight.normal_(std=0.5)
    transformer.text_vocab = list(text_vocab or [])
    tokenizer.save(path / "tokenizer")
    transformer.save(path / "transformer")
    return path


def stopped_then_resumed(job, run_dir: Path):
    """Run `job(run_dir=..., progress=...)` (a Model.extend/generate with its settings bound) until
    half its patches are done, stop it there (KeyboardInterrupt), then run it again in the same
    directory to the end → what the resumed run returns. Set the engine's CHECKPOINT_SECONDS to 0
    first, so that a checkpoint is written after every wave."""
    def stop(done, total):
        if done >= total // 2:
            raise KeyboardInterrupt

    try:
        job(run_dir=run_dir, progress=stop)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the job was not stopped: it ended before half its patches were done")
    return job(run_dir=run_dir)


def extend_kept(model_dir: Path, source: Path, out_dir: Path, name: str, width: int, height: int, *flags: str):
    """`nuwa-inf extend SOURCE` to width × height with the model in `model_dir`, the run kept in
    out_dir/name → (the image (H, W, 3) uint8, the run's last saved token grid)."""
    import json

    import numpy as np
    from PIL import Image

    from nuwa_inf.cli import main

    out = out_dir / f"{name}.png"
    assert main(["extend", str(source), "-o", str(out), "--width", str(width), "--height", str(height),
                 "--model", str(model_dir), "--quiet", "--run-dir", str(out_dir / name), *flags]) == 0
    state = json.loads((out_dir / name / "state.json").read_text())
    return np.asarray(Image.open(out)), np.load(out_dir / name / state["files"]["tokens"])


def check_on_by_default_without_a_prompt(run, flag: str, default: float, forced: str, word: str = "snow"):
    """`run(name, *flags)` → an extend's result (its image or tokens, with a text model): the
    default of `flag` is `default` without a prompt and off with one (`word`), unless asked for
    (`forced`)."""
    import numpy as np

    assert default > 0
    plain = run("default")
    assert np.array_equal(plain, run("explicit", flag, f"{default}"))
    assert not np.array_equal(plain, run("off", flag, "0"))
    prompted = run("prompted", "--text", word)
    assert np.array_equal(prompted, run("prompted_off", "--text", word, flag, "0"))
    assert not np.array_equal(prompted, run("prompted_on", "--text", word, flag, forced))


def check_filter_ignores_the_tiling(model_dir: Path, post, ring: int = 0) -> None:
    """`post(pixels, origin)`, a filter of decoded windows that reads `ring` tokens beyond a window's
    core: a tiny model's decode through it, with that much more margin, is the same whole and in
    small tiles, and not the plain decode."""
    import numpy as np

    from nuwa_inf.infer.bundle import load_bundle
    from nuwa_inf.tokenizer.tiled import decode_tiled

    tokenizer = load_bundle(model_dir).tokenizer
    tokens = np.random.default_rng(3).integers(0, tokenizer.codebook_size, (12, 20))
    margin = tokenizer.decoder_margin + ring
    whole = decode_tiled(tokenizer, tokens, tile=64, margin=margin, post=post)
    assert np.array_equal(whole, decode_tiled(tokenizer, tokens, tile=(4, 6), margin=margin, post=post))
    assert not np.array_equal(whole, decode_tiled(tokenizer, tokens, tile=64))


def check_pixel_filter_by_default(tmp_path_factory, tmp_path: Path, image, flag: str, default: float,
                                  kept_file: str) -> dict:
    """A filter of extend's decoded pixels (`flag`), fitted on the input and kept in the run directory
    as `kept_file`: on at `default` without a prompt and off with one unless asked for
    (`check_on_by_default_without_a_prompt`), the same tokens on and off, its fit kept only where it
    acts → the runs, {name: (image, tokens)}."""
    import numpy as np
    from PIL import Image

    text_model = make_model_dir(tmp_path_factory.mktemp("filter_text_model"), text_vocab=["snow"])
    source = tmp_path / "input.png"
    Image.fromarray(image).save(source)
    runs = {}

    def run(name, *flags):
        runs[name] = extend_kept(text_model, source, tmp_path, name, 384, 192, "--seed", "1", "--threads", "1",
                                 *flags)
        return runs[name][0]

    check_on_by_default_without_a_prompt(run, flag, default, forced="1")
    assert np.array_equal(runs["default"][1], runs["off"][1])          # the same tokens, other pixels
    assert (tmp_path / "default" / kept_file).is_file()
    assert not (tmp_path / "off" / kept_file).exists() and not (tmp_path / "prompted" / kept_file).exists()
    return runs
