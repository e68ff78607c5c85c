"""Generation throughput: our wave sampler vs a naive sliding-window sampler, same model, same run.

    python benchmarks/bench_sampler.py [--waves 8,16] [--context 4] [--naive-steps 32]
                                       [--repeats 2] [--threads N] [--quick] [--json FILE]

Both samplers use the same random-weight `small` transformer (d 256, 4 layers, 4 heads,
vocab 4096: the bundled model's shapes; speed does not depend on the weights' values), the
same wave of n patches, each with the same `--context` context patches (offsets left,
up-left, up, up-right, ...), the same uniforms, in one process, one after the other.

* engine: `WaveSampler.sample` — one token per patch per step for the whole wave, per-patch
  KV caches, context K/V read from a `ContextPool` filled once (by `WaveSampler.prefill`
  of the context patches). Times a whole wave: 256 tokens per patch (+1 step for the
  last token's K/V).
* naive (Taming-Transformers style sliding window): for every token, re-run the model's
  own modules over the whole window — the context patches' 4×256 tokens and the current
  patch's BOS + prefix — no KV cache, no context pool. This variant is the cheaper naive
  one (the prefix only, not the whole window as Taming does; no head over the context
  tokens; context patches do not attend to each other), so the ratio is a lower bound.
  Its cost per token hardly depends on the position, so it is timed on `--naive-steps`
  token positions spread evenly over 0…255 (not the first ones, which are the cheapest) and
  tokens/s = n / mean step time (extrapolated: said in the output).

The naive sampler reads the engine's own tokens as its prefix, so its sampled token at each
timed position must equal the engine's: the agreement is printed (a check that both run the
same model on the same canvas). The ratio is what to compare: the machine has 2 cores,
often shared with a training job, so absolute tokens/s are noisy; both sides of a ratio are
measured in the same run, interleaved per repeat. With more torch threads than free cores
(e.g. 2 threads beside a training job) PyTorch's OpenMP threads wait on each other and the
engine, which runs thousands of small ops, slows down ~10× while the naive sampler's large
matmuls suffer less: use `--threads 1` on a busy machine.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch  # noqa: E402

from common import build_transformer, machine_info, print_table, write_json  # noqa: E402  (adds the repo to sys.path)
from nuwa_inf.kernels import PatchLayout  # noqa: E402
from nuwa_inf.model.context_pool import ContextPool  # noqa: E402
from nuwa_inf.model.sampler import WaveSampler, pick_tokens  # noqa: E402

# context offsets (Δt, Δrow, Δcol) in the order a sweep / strips order meets them
OFFSETS = [(0, 0, -1), (0, -1, -1), (0, -1, 0), (0, -1, 1), (0, 1, -1), (0, 0, 1), (0, 1, 0), (0, 1, 1)]


class Setup:
    """A wave of n patches, each with m context patches whose K/V are in a ContextPool."""

    def __init__(self, model, n: int, m: int, backend: str, seed: int = 0):
        cfg = model.cfg
        self.model, self.n, self.m, self.backend = model, n, m, backend
        gen = torch.Generator().manual_seed(seed)
        self.ctx_tokens = torch.randint(0, cfg.vocab_size, (n * m, cfg.patch_tokens), generator=gen)
        self.uniforms = torch.rand((n, cfg.patch_tokens), generator=gen, dtype=torch.float64)
        self.pool = ContextPool(cfg.layers, cfg.heads, cfg.patch_tokens, cfg.head_dim, capacity=n * m)
        self.sampler = WaveSampler(model, self.pool, backend)
        # canvas (row, col): query patch i at (3i, 10), its context patch j at the offset it is given
        self.query_rc = torch.tensor([[3 * i, 10] for i in range(n)])
        self.ctx_rc = torch.tensor([[3 * i + OFFSETS[j % len(OFFSETS)][1], 10 + OFFSETS[j % len(OFFSETS)][2]]
                                    for i in range(n) for j in range(m)])
        canvas_token_rows = (3 * n + 1) * cfg.patch_h  # (first token row, canvas token rows) per patch
        self.query_rows = torch.stack([self.query_rc[:, 0] * cfg.patch_h,
                                       torch.full((n,), canvas_token_rows)], dim=1)
        self.ctx_rows = torch.stack([self.ctx_rc[:, 0] * cfg.patch_h,
                                     torch.full((n * m,), canvas_token_rows)], dim=1)
        # fill the pool: the context patches' K/V, computed once (themselves without context)
        positions = [(0, i, j) for i in range(n) for j in range(m)]
        k, v = self.sampler.prefill(self.ctx_tokens, self.no_context(n * m), self.ctx_rc, self.ctx_rows)
        self.pool.add(positions, k, v)
        slots = self.pool.slots([[(0, i, j) for j in range(m)] for i in range(n)])
        offsets = torch.tensor([[cfg.offset_id(*OFFSETS[j % len(OFFSETS)]) for j in range(m)]] * n)
        self.ctx_index, self.ctx_offset = slots, offsets
        # the naive sampler indexes its own freshly computed context K/V: patch i, slot j → row i*m + j
        self.naive_index = torch.arange(n * m).view(n, m)

    def no_context(self, count: int) -> PatchLayout:
        return PatchLayout(torch.full((count, 1), -1, dtype=torch.int64), None, self.model.cfg.n_offsets)

    def engine_layout(self) -> PatchLayout:
        return PatchLayout(self.ctx_index.clone(), self.ctx_offset.clone(), self.model.cfg.n_offsets)

    def naive_layout(self) -> PatchLayout:
        return PatchLayout(self.naive_index.clone(), self.ctx_offset.clone(), self.model.cfg.n_offsets)


def run_engine(setup: Setup) -> tuple[float, torch.Tensor]:
    """Seconds for a whole wave (n patches × 256 tokens), and the tokens."""
    layout = setup.engine_layout()
    start = time.perf_counter()
    tokens, _, _ = setup.sampler.sample(layout, setup.query_rc, setup.uniforms, temperature=1.0,
                                        canvas_rows=setup.query_rows)
    return time.perf_counter() - start, tokens


@torch.inference_mode()
def naive_step(setup: Setup, prefix: torch.Tensor, t: int) -> torch.Tensor:
    """One token per patch at position t by re-running the whole window: (n,) tokens."""
    model, backend = setup.model, setup.backend
    n = setup.n
    last = len(model.blocks) - 1
    xc = model.embed(model.patch_inputs(setup.ctx_tokens))                    # (n·m, P+1, d)
    ids = torch.cat([torch.full((n, 1), model.bos, dtype=torch.int64), prefix[:, :t]], dim=1)
    xq = model.embed(ids)                                                     # (n, t+1, d)
    bands_c = model.band_embedding(setup.ctx_rows, n * setup.m, xc.device)     # (n·m, P+1, d) or None
    if bands_c is not None:
        xc = xc + bands_c
        xq = xq + model.band_embedding(setup.query_rows, n, xq.device)[:, :t + 1]
    layout_q, layout_c = setup.naive_layout(), setup.no_context(n * setup.m)
    rope_c = model.rope(setup.ctx_rc, n * setup.m, xc.device)
    rope_q = model.rope(setup.query_rc, n, xq.device)
    rope_q = None if rope_q is None else type(rope_q)(rope_q.cos[:, :t + 1], rope_q.sin[:, :t + 1])
    for index, block in enumerate(model.blocks):
        qc, kc, vc = block.attn.project(block.norm1(xc), rope_c)
        k_ctx, v_ctx = kc[:, :, 1:], vc[:, :, 1:]                             # the context tokens' K/V
        q, k, v = block.attn.project(block.norm1(xq), rope_q)
        xq = xq + block.attn.attend(q, k, v, k_ctx, v_ctx, layout_q, backend)
        xq = xq + block.mlp(block.norm2(xq))
        if index < last:  # the last layer's context output feeds nothing
            xc = xc + block.attn.attend(qc, kc, vc, k_ctx, v_ctx, layout_c, backend)
            xc = xc + block.mlp(block.norm2(xc))
    logits = model.head(model.norm(xq[:, -1]))
    return pick_tokens(logits, setup.uniforms[:, t], 1.0, 0, 1.0)


def run_naive(setup: Setup, reference: torch.Tensor, positions: list[int]) -> tuple[list[float], int]:
    """Per-step seconds at the given positions, and how many sampled tokens equal the engine's."""
    times, agree = [], 0
    for t in positions:
        start = time.perf_counter()
        picked = naive_step(setup, reference, t)
        times.append(time.perf_counter() - start)
        agree += int((picked == reference[:, t]).sum())
    return times, agree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waves", default="8,16", help="wave widths (patches sampled together), comma-separated")
    parser.add_argument("--context", type=int, default=4, help="context patches per patch")
    parser.add_argument("--naive-steps", type=int, default=32, help="token positions the naive sampler is timed on")
    parser.add_argument("--repeats", type=int, default=2, help="engine/naive measurements per wave width (best kept)")
    parser.add_argument("--model", default="small", help="transformer preset (random weights)")
    parser.add_argument("--backend", default="auto", help="attention backend for both samplers")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--quick", action="store_true", help="wave 8 only, 8 naive steps, 1 repeat")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    waves = [int(w) for w in args.waves.split(",")]
    if args.quick:
        waves, args.naive_steps, args.repeats = waves[:1], min(args.naive_steps, 8), 1
    torch.set_num_threads(args.threads or max(1, os.cpu_count() or 1))
    model = build_transformer(args.model)
    cfg = model.cfg
    steps = max(1, min(args.naive_steps, cfg.patch_tokens))
    positions = sorted({round(i * (cfg.patch_tokens - 1) / max(1, steps - 1)) for i in range(steps)})
    info = machine_info(threads=torch.get_num_threads())
    print(f"model {args.model} (random weights): d {cfg.dim}, {cfg.layers} layers, {cfg.heads} heads, "
          f"vocab {cfg.vocab_size}, {cfg.patch_tokens} tokens/patch; context {args.context} patches; "
          f"torch threads {torch.get_num_threads()}, load {info['loadavg_1m']:.2f}, "
          f"{info['nuwa_train_processes']} nuwa-inf train process(es) beside us")
    print(f"naive: timed on {len(positions)} token positions spread over 0..{cfg.patch_tokens - 1}, "
          f"tokens/s extrapolated as wave / mean step time")

    # warm-up (first calls allocate, build masks, pick kernels)
    warm = Setup(model, 2, args.context, args.backend, seed=99)
    _, warm_tokens = run_engine(warm)
    run_naive(warm, warm_tokens, positions[:2])

    results = []
    for n in waves:
        setup = Setup(model, n, args.context, args.backend, seed=n)
        engine_s, naive_steps_s, agree, checked = [], [], 0, 0
        for _ in range(args.repeats):
            seconds, tokens = run_engine(setup)
            engine_s.append(seconds)
            times, ok = run_naive(setup, tokens, positions)
            naive_steps_s.append(sum(times) / len(times))
            agree, checked = agree + ok, checked + n * len(positions)
        engine_tps = n * cfg.patch_tokens / min(engine_s)
        naive_tps = n / min(naive_steps_s)
        row = {"wave": n, "context": args.context, "engine_tok_s": engine_tps, "naive_tok_s": naive_tps,
               "ratio": engine_tps / naive_tps, "engine_wave_s": engine_s, "naive_step_s": naive_steps_s,
               "engine_step_ms": 1000 * min(engine_s) / cfg.seq_len,
               "naive_patch_s_extrapolated": min(naive_steps_s) * cfg.patch_tokens,
               "naive_positions": positions, "token_agreement": f"{agree}/{checked}"}
        results.append(row)
        print(f"wave {n}: engine {engine_tps:.0f} tok/s, naive {naive_tps:.1f} tok/s, "
              f"ratio {row['ratio']:.0f}x, tokens agree {agree}/{checked}", flush=True)

    print()
    print_table(["wave", "ctx", "engine tok/s", "engine ms/step", "naive tok/s*", "naive s/step", "ratio", "agree"],
                [[r["wave"], r["context"], f"{r['engine_tok_s']:.0f}", f"{r['engine_step_ms']:.1f}",
                  f"{r['naive_tok_s']:.1f}", f"{min(r['naive_step_s']):.3f}", f"{r['ratio']:.0f}x",
                  r["token_agreement"]] for r in results])
    print(f"* naive extrapolated from {len(positions)} timed token positions per patch; "
          f"best of {args.repeats} repeat(s) each; same model, context and uniforms in one run")
    write_json(args.json, {"benchmark": "sampler", "model": args.model, "naive_positions": len(positions),
                           "repeats": args.repeats, "machine": info, "results": results,
                           "command": " ".join([os.path.basename(sys.executable), *sys.argv])})
    return 0


if __name__ == "__main__":
    sys.exit(main())
