"""The Python API: load a model, then extend, generate or reconstruct images.

    import nuwa_inf
    model = nuwa_inf.load()                          # the bundled model (or a directory)
    wide = model.extend(Image.open("piece.png"), width=4096, height=1024)
    clip = model.animate("still.png", frames=16)     # (16, H, W, 3) uint8 (the video transformer)

Images go in as PIL images, (H, W, 3) uint8 arrays or file paths, and come back as PIL
images while the canvas fits in memory (`MAX_IN_MEMORY_PIXELS`); bigger canvases are
streamed to `output=` (PNG or tiled BigTIFF) and the path is returned. The work is done
by the same code as `nuwa-inf extend` (`nuwa_inf.infer.cli.run_canvas`), with the same
checks: bad input raises `nuwa_inf.UserError` with the CLI's one-line message.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Union

import numpy as np
from PIL import Image

from .errors import UserError
from .infer.bundle import ModelBundle, draws_with_text_model, has_text_model, load_bundle
from .infer.cli import DEFAULT_FIRST_ROW_TEMPERATURE, DEFAULT_STYLE_WEIGHT, CanvasSettings, run_canvas

# 64 Mpx = 192 MB as RGB: returned as a PIL image; anything larger must go to `output=`.
MAX_IN_MEMORY_PIXELS = 64_000_000

ImageInput = Union[Image.Image, np.ndarray, str, os.PathLike]
Progress = Callable[[int, int], None]


def load(model: str | os.PathLike | None = None, device: str = "auto", attn_backend: str = "auto") -> "Model":
    """Load a model directory (`tokenizer/` + transformer), or the bundled one for None / "default".

    `device` is "auto" (CUDA when available), "cpu", "cuda" or "cuda:N"; `attn_backend`
    picks the attention kernel ("auto", "sdpa", "triton", "xformers", "reference").
    """
    return Model(load_bundle(None if model is None else str(model), device), attn_backend)


def to_rgb(image: ImageInput) -> np.ndarray:
    """Any supported image input → (H, W, 3) uint8, with the CLI's mode handling (alpha on white, 16-bit scaled)."""
    from .images import _to_rgb_array, load_rgb

    if isinstance(image, (str, os.PathLike)):
        return load_rgb(image)
    if isinstance(image, Image.Image):
        if image.width == 0 or image.height == 0:
            raise UserError(f"the input image has zero size ({image.width}x{image.height})")
        return _to_rgb_array(image, Path("<PIL image>"))
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
            raise UserError(f"an array image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        if image.shape[2] == 4:
            return _to_rgb_array(Image.fromarray(image, "RGBA"), Path("<array>"))
        if 0 in image.shape:
            raise UserError(f"the input image has zero size ({image.shape[1]}x{image.shape[0]})")
        return np.array(image, order="C")  # a writable copy: the caller keeps its array
    raise UserError(f"expected a PIL image, a uint8 array or a file path, got {type(image).__name__}")


def psnr(a: ImageInput, b: ImageInput) -> float:
    """PSNR in dB between two images of the same size (peak 255)."""
    x, y = to_rgb(a).astype(np.float32), to_rgb(b).astype(np.float32)
    if x.shape != y.shape:
        raise UserError(f"images differ in size: {x.shape[1]}x{x.shape[0]} vs {y.shape[1]}x{y.shape[0]}")
    mse = float(np.mean((x - y) ** 2))
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


class Model:
    """A loaded tokenizer + transformer. Methods are safe to call repeatedly; each call is one job."""

    def __init__(self, bundle: ModelBundle, attn_backend: str = "auto"):
        self.bundle = bundle
        self.attn_backend = attn_backend
        self._video: ModelBundle | None = None   # the video transformer, loaded by the first clip job
        self._text: ModelBundle | None = None    # the text-to-image transformer, loaded by the first prompt

    @property
    def directory(self) -> Path:
        """The model directory the weights came from."""
        return self.bundle.directory

    @property
    def patch_pixels(self) -> tuple[int, int]:
        """(height, width) of one generated patch in pixels."""
        cfg, f = self.bundle.transformer.cfg, self.bundle.tokenizer.downsample
        return cfg.patch_h * f, cfg.patch_w * f

    def extend(self, image: ImageInput, width: int, height: int, *, anchor: str = "center",
               order: str = "auto", seed: int = 0, temperature: float = 1.0, top_k: int = 0,
               top_p: float = 1.0, min_p: float = 0.0, batch: int = 16, blend: int = 256, edge_tokens: int = 2,
               text: str = "", guidance: float | None = None,
               first_row_temperature: float | None = DEFAULT_FIRST_ROW_TEMPERATURE,
               input_guidance: float = 1.0, input_blind: str = "memory", colour_prior: float = 0.0,
               code_prior: float | None = None, code_prior_far: float | None = None,
               neighbour_match: float | None = None, colour_tilt: float | None = None,
               colour_match: float | None = None, detail_transfer: float | None = None,
               style_weight: float = DEFAULT_STYLE_WEIGHT, adapt: int = 0, detail_match: bool = True,
               output: str | os.PathLike | None = None, overwrite: bool = False,
               run_dir: str | os.PathLike | None = None, progress: Progress | None = None) -> Image.Image | Path:
        """Outpaint `image` to a `width`×`height` canvas, as `nuwa-inf extend` does.

        anchor: "left" | "center" | "right" | "top" | "bottom" | "X,Y" (pixels).
        order: "auto" (strips for an input spanning the height, else outward), "strips",
        "outward", "raster" or a sweep direction. seed/temperature/top_k/top_p/min_p: sampling
        (per-patch random streams: the image does not depend on `batch`). blend: pixels over
        which the input fades into its surroundings (multi-band); edge_tokens: the input's outer
        token columns/rows regenerated (its own encoding gets them wrong). text: a prompt (text-guided
        outpainting; the model needs a text encoder), guidance: its classifier-free guidance
        scale (None: the CLI's default with a prompt); first_row_temperature: the temperature
        of each patch's first token row, which sets its palette (None: `temperature`; the default
        is extend's measured one, `infer.cli.DEFAULT_FIRST_ROW_TEMPERATURE`). input_guidance:
        classifier-free guidance on the input (1: none), its blind branch without the style memory
        (input_blind "memory") or without memory and neighbours ("all"). colour_prior: the strength of
        the input's palette at each height on every code's logit (infer/colour_prior.py; 0: off).
        code_prior: the logit penalty on codes the input does not use near each height
        (infer/code_prior.py; 0: off; None: extend's measured default without a prompt,
        `infer.cli.DEFAULT_CODE_PRIOR`, and off with one); code_prior_far: up to how much more (× the
        strength) a code pays whose colour is far from every colour the input's codes have near that
        height (None: `infer.cli.DEFAULT_CODE_PRIOR_FAR`). neighbour_match: the largest share of each
        token's probabilities given to the input's votes, the codes it puts where its neighbourhood
        looks like the token's, scaled by how much they agree (infer/neighbour_match.py; 0: off; None:
        `infer.cli.DEFAULT_NEIGHBOUR_MATCH` without text, 0 with it). colour_tilt: how hard the mean
        colour of the generated rows at each height is pulled back to the input's
        (infer/colour_tilt.py; 0: off; None: `infer.cli.DEFAULT_COLOUR_TILT` without text, 0 with it).
        colour_match: the share of the decoder's colour cast, measured on the input's own decoded
        tokens, taken off every decoded pixel (chroma only; infer/colour_match.py; 0: off; None:
        `infer.cli.DEFAULT_COLOUR_MATCH` without text, 0 with it). detail_transfer: the share of the
        input's lost fine detail (its pixels less its own decoded tokens, high-passed) added to each
        decoded block from the input block that looks most alike at about its height, neighbours
        joined along quilting cuts (infer/detail_transfer.py; 0: off; None:
        `infer.cli.DEFAULT_DETAIL_TRANSFER` without text, 0 with it).
        style_weight: with a prompt, the share of the input's style memory the prompted branch reads
        (1: all; lower lets a prompt that edits the light or palette outvote the input; the default
        is extend's measured one, `infer.cli.DEFAULT_STYLE_WEIGHT`).
        adapt: steps of test-time adaptation: a copy of the transformer fine-tuned on the input's
        own tokens first (infer/adapt.py; 0: off). detail_match: scale the decoder's finest detail
        to the amount the input has (infer/detail.py).
        output: write a .png/.tif/.tiff there and return its Path (needed above
        `MAX_IN_MEMORY_PIXELS`); without it a PIL image is returned.
        run_dir: keep the run state there; calling again with the same arguments and
        run_dir continues an interrupted run (same image, byte for byte).
        progress: called as progress(patches_done, patches_total) after each batch.
        """
        settings = CanvasSettings(width=width, height=height, anchor=anchor, order=order, seed=seed,
                                  temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, batch=batch,
                                  blend=blend, edge_tokens=edge_tokens, text=text, guidance=guidance,
                                  first_row_temperature=first_row_temperature,
                                  input_guidance=input_guidance, input_blind=input_blind,
                                  colour_prior=colour_prior, code_prior=code_prior, code_prior_far=code_prior_far,
                                  neighbour_match=neighbour_match, colour_tilt=colour_tilt,
                                  colour_match=colour_match, detail_transfer=detail_transfer,
                                  style_weight=style_weight,
                                  adapt=adapt, detail_match=detail_match)
        return self._canvas_job(to_rgb(image), settings, output, overwrite, run_dir, progress,
                                bundle=self._text_bundle() if draws_with_text_model(text, True, height) else None)

    def generate(self, width: int, height: int, *, order: str = "auto", seed: int = 0,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0,
                 batch: int = 16, text: str = "", guidance: float | None = None,
                 canvas_prior: float | None = None,
                 output: str | os.PathLike | None = None, overwrite: bool = False,
                 run_dir: str | os.PathLike | None = None,
                 progress: Progress | None = None) -> Image.Image | Path:
        """Generation of a `width`×`height` canvas (raster order by default) from a prompt
        (`text`) or unconditional; the arguments mean what they mean for `extend`. canvas_prior:
        the penalty on codes far in colour from what the canvas already holds near each height
        (infer/canvas_prior.py; 0: off; None: `infer.cli.DEFAULT_CANVAS_PRIOR`)."""
        settings = CanvasSettings(width=width, height=height, order=order, seed=seed, temperature=temperature,
                                  top_k=top_k, top_p=top_p, min_p=min_p, batch=batch, text=text,
                                  guidance=guidance, canvas_prior=canvas_prior)
        return self._canvas_job(None, settings, output, overwrite, run_dir, progress,
                                bundle=self._text_bundle() if draws_with_text_model(text, False, height) else None)

    def animate(self, image: ImageInput, frames: int, *, fps: float = 8.0, seed: int = 0, text: str = "",
                guidance: float | None = None, temperature: float | None = None, top_k: int = 0, top_p: float = 1.0,
                batch: int = 16, order: str = "raster", persistence: float | None = None, min_p: float = 0.0,
                deflicker: bool = True, code_prior: float | None = None, keep_motion: float | None = None,
                still_detail: bool = True, output: str | os.PathLike | None = None, overwrite: bool = False,
                run_dir: str | os.PathLike | None = None, progress: Progress | None = None) -> np.ndarray | Path:
        """Animate a still, as `nuwa-inf animate` does: a clip of `frames` frames of the still's
        size whose frame 0 is the still itself (with `still_detail=False`, as the tokenizer
        reconstructs it). Needs the model's video transformer. Returns (frames, H, W, 3) uint8, or
        with `output` (.mp4, .webm, .gif, .webp or a folder ending in /) writes the clip there at
        `fps` and returns its Path. The other
        arguments mean what they mean for `extend` (temperature None: the clip default,
        `infer.clip_cli.DEFAULT_CLIP_TEMPERATURE`); `order` is each frame's sweep; `persistence`
        the logit bonus of the token a place held in the frame before (None: the clip default,
        `infer.clip_cli.DEFAULT_PERSISTENCE`); `deflicker` passes the frames through a temporal
        median of three (video/deflicker.py; the run directory keeps them as sampled); `still_detail`
        adds back to every frame the still's detail that the tokenizer loses (video/still_detail.py:
        frame 0 is then the still itself); `code_prior`
        the penalty on codes the still does not use near each height (infer/code_prior.py; None: the
        clip default, `infer.clip_cli.DEFAULT_ANIMATE_CODE_PRIOR`); `keep_motion` the share of tokens
        per frame below which a patch is sampled hotter (infer/keep_motion.py; None: the clip default,
        `infer.clip_cli.DEFAULT_KEEP_MOTION`)."""
        still = to_rgb(image)
        return self._clip_job(still, still.shape[1], still.shape[0], frames, fps, seed, text, guidance,
                              temperature, top_k, top_p, batch, order, output, overwrite, run_dir, progress,
                              persistence, min_p=min_p, deflicker=deflicker, code_prior=code_prior,
                              keep_motion=keep_motion, still_detail=still_detail)

    def generate_clip(self, width: int, height: int, frames: int, *, fps: float = 8.0, seed: int = 0,
                      text: str = "", guidance: float | None = None, temperature: float | None = None, top_k: int = 0,
                      top_p: float = 1.0, batch: int = 16, order: str = "raster", persistence: float | None = None,
                      first_frame_temperature: float | None = None, min_p: float = 0.0, deflicker: bool = True,
                      first_frame: str = "auto", code_prior: float | None = None, keep_motion: float | None = None,
                      still_detail: bool = True, output: str | os.PathLike | None = None, overwrite: bool = False,
                      run_dir: str | os.PathLike | None = None, progress: Progress | None = None) -> np.ndarray | Path:
        """A clip from a prompt (`text`) or unconditional, as `nuwa-inf generate --frames`; returns
        and writes as `animate`. `first_frame`: "image" draws frame 0 with the image transformer
        and animates it (infer/first_frame.py), "clip" samples it with the video transformer,
        "auto" (default) the first where the model has both. `first_frame_temperature`: frame 0's
        (None: 1 for a drawn frame 0, `temperature` for a sampled one); `code_prior` as for
        `animate`, on a drawn frame 0 (None: `DEFAULT_DRAWN_CODE_PRIOR`); `keep_motion` as for
        `animate`; `still_detail` adds a drawn frame 0's detail back to every frame, as `animate` does
        the still's."""
        return self._clip_job(None, width, height, frames, fps, seed, text, guidance, temperature, top_k, top_p,
                              batch, order, output, overwrite, run_dir, progress, persistence,
                              first_frame_temperature, min_p=min_p, deflicker=deflicker, first_frame=first_frame,
                              code_prior=code_prior, keep_motion=keep_motion, still_detail=still_detail)

    def reconstruct(self, image: ImageInput, output: str | os.PathLike | None = None,
                    overwrite: bool = False, tile: int = 64) -> Image.Image | Path:
        """Encode `image` to tokens and decode it back (tiled, exact), as `nuwa-inf reconstruct`.

        Returns a PIL image of the input's size, or writes `output` and returns its Path.
        `nuwa_inf.psnr(image, result)` measures the round trip.
        """
        from .infer.writers import export
        from .tokenizer.cli import pad_to_multiple
        from .tokenizer.tiled import decode_tiled, encode_tiled

        out = self._check_output(output, overwrite)
        pixels = to_rgb(image)
        tokenizer = self.bundle.tokenizer
        height, width = pixels.shape[:2]
        tokens = encode_tiled(tokenizer, pad_to_multiple(pixels, tokenizer.downsample), tile=tile)
        recon = decode_tiled(tokenizer, tokens, tile=tile)[:height, :width]
        if out is not None:
            return export(recon, out)
        return Image.fromarray(np.ascontiguousarray(recon))

    # -- shared by extend and generate ---------------------------------------------------
    @staticmethod
    def _check_output(output: str | os.PathLike | None, overwrite: bool) -> Path | None:
        from .images import check_output_path, refuse_overwrite

        if output is None:
            return None
        out = check_output_path(output)
        refuse_overwrite(out, overwrite)
        return out

    def _text_bundle(self) -> ModelBundle:
        """What draws from a prompt (where `infer.bundle.draws_with_text_model` says): the directory's
        text-to-image transformer (`text/`) where it has one, else the image transformer."""
        if not has_text_model(self.directory):
            return self.bundle
        if self._text is None:
            self._text = load_bundle(self.directory, str(next(self.bundle.transformer.parameters()).device),
                                     text=True)
        return self._text

    def _canvas_job(self, image: np.ndarray | None, settings: CanvasSettings, output, overwrite: bool,
                    run_dir, progress: Progress | None, bundle: ModelBundle | None = None) -> Image.Image | Path:
        from .infer.engine import remove_run_dir
        from .infer.writers import export

        settings.check()
        out = self._check_output(output, overwrite)
        if out is None and settings.width * settings.height > MAX_IN_MEMORY_PIXELS:
            raise UserError(f"a {settings.width}x{settings.height} canvas is "
                            f"{settings.width * settings.height / 1e6:.0f} Mpx, more than "
                            f"{MAX_IN_MEMORY_PIXELS / 1e6:.0f} Mpx to return in memory; pass output='big.tif'")
        resume = run_dir if run_dir is not None and (Path(run_dir) / "job.json").is_file() else None
        result = run_canvas(bundle or self.bundle, image, settings, run_dir=run_dir, resume=resume,
                            temp_parent=out.parent if out is not None else tempfile.gettempdir(),
                            temp_prefix=f".{out.stem}.run." if out is not None else "nuwa-inf.run.",
                            backend=self.attn_backend, progress=False, on_progress=progress,
                            same_settings=True)
        try:
            if out is not None:
                export(result.canvas, out)
                return out
            pixels = result.canvas.read_region(0, 0, settings.height, settings.width)
            return Image.fromarray(pixels)
        finally:
            result.canvas.close()
            if result.temporary:
                remove_run_dir(result.run_dir)

    def _clip_job(self, still, width, height, frames, fps, seed, text, guidance, temperature, top_k, top_p, batch,
                  order, output, overwrite, run_dir, progress, persistence,
                  first_frame_temperature=None, min_p=0.0, deflicker=True, first_frame="auto",
                  code_prior=None, keep_motion=None, still_detail=True) -> np.ndarray | Path:
        from .infer.clip_cli import (
            DEFAULT_CLIP_TEMPERATURE,
            DEFAULT_PERSISTENCE,
            ClipSettings,
            clip_frames,
            run_clip,
            write_clip,
        )
        from .infer.engine import remove_run_dir
        from .video.writers import check_clip_output

        temperature = DEFAULT_CLIP_TEMPERATURE if temperature is None else temperature
        settings = ClipSettings(frames=frames, fps=fps, seed=seed, temperature=temperature, top_k=top_k,
                                top_p=top_p, min_p=min_p, batch=batch, order=order, text=text, guidance=guidance,
                                persistence=DEFAULT_PERSISTENCE if persistence is None else persistence,
                                first_frame_temperature=first_frame_temperature, first_frame=first_frame,
                                code_prior=code_prior, keep_motion=keep_motion)
        settings.check()
        out = check_clip_output(output, overwrite) if output is not None else None
        if self._video is None:
            self._video = load_bundle(self.directory, str(next(self.bundle.transformer.parameters()).device),
                                      video=True)
        resume = run_dir if run_dir is not None and (Path(run_dir) / "job.json").is_file() else None
        result = run_clip(self._video, still, width, height, settings, run_dir=run_dir, resume=resume,
                          temp_parent=out.parent if out is not None else tempfile.gettempdir(),
                          backend=self.attn_backend, progress=False, on_progress=progress, same_settings=True,
                          images=self._text_bundle() if text and still is None else self.bundle)
        try:
            still = result.still if still_detail else None
            if out is not None:
                return write_clip(result.frames, out, fps, overwrite, deflicker, still)
            return np.stack(list(clip_frames(result.frames, deflicker, still)))
        finally:
            if result.temporary:
                remove_run_dir(result.run_dir)

    def __repr__(self) -> str:
        return f"nuwa_inf.Model({str(self.directory)!r})"
