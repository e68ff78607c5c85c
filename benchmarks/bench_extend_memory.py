"""Peak memory and speed of a full `nuwa-inf extend` as the canvas grows wider.

    python benchmarks/bench_extend_memory.py [--widths 4096,16384,38912] [--height 512]
                                             [--crop S] [--threads N] [--batch N] [--trace S]
                                             [--quick] [--json FILE]

Each width is one complete `nuwa-inf extend` (load, encode, prefill, sample, streaming
decode, PNG export) in its own subprocess, with a random-weight `small` model (the bundled
model's shapes; speed and memory do not depend on the weights' values) written once to the
work directory. The input is the bundled example scroll (2048×2048), by default cropped to
a centred `--height`×`--height` square so that it spans the canvas height, as in the main job.

The default (height 512: 2 patch rows) finishes in minutes on 2 cores; the main job's canvas
is `--height 2048 --widths 38912` (8 rows, 1152 patches: long on a CPU).

Per width it reports:
* wall time of the child, tokens sampled, tokens/s (over the sampling phase and over the wall),
* peak RSS, two ways: the child's own high-water mark (VmHWM of /proc/self/status, read by the
  child when `extend` returns: exact for its own address space) and `ru_maxrss` from
  `os.wait4` (which on Linux also counts the parent's RSS at spawn time; the parent imports
  neither torch nor numpy to keep that small); plus the largest anonymous RSS seen by polling
  /proc/PID/status (heap only, without mapped files),
* the phase split: load, encode, prefill, sample, decode (incl. writing pixels), checkpoint,
  export, other — measured in the child by wrapping the engine's functions with timers
  (`WaveSampler.sample/prefill`, `encode_tiled`, `decode_tiled`, `CanvasRun._save_state`,
  `writers.export`, `load_bundle`); nothing in the package is changed,
* the Nearby Context Pool's peak live slots and capacity (must not grow with the width),
* with `--trace S`, an RSS time series (one sample per S seconds) in the JSON: the sampling
  phase holds a flat baseline, and the peak is the streaming decoder's transient (one tile of
  at most 64×64 tokens + margins at full resolution), bounded by the tile, not the canvas.

Timings are noisy on a shared 2-core machine (load and neighbouring `nuwa-inf train`
processes are recorded); compare widths within one run, and memory rather than seconds.
Note: with more torch threads than free cores, PyTorch's OpenMP threads wait on each other
and sampling can slow down ~10×; `--threads 1` gives steadier numbers on a busy machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import REPO, machine_info, print_table, write_json  # noqa: E402

EXAMPLE = REPO / "nuwa_inf" / "assets" / "example_scroll.png"


# ---------------------------------------------------------------- the child: one timed extend
def child_main(out_json: str, argv: list[str]) -> int:
    import resource

    from nuwa_inf import cli
    from nuwa_inf.infer import bundle as bundle_mod
    from nuwa_inf.infer import engine, writers
    from nuwa_inf.model.sampler import WaveSampler

    timings: dict[str, float] = {}
    counts: dict[str, int] = {"tokens_sampled": 0, "patches_sampled": 0, "sample_calls": 0}

    def timed(name, fn, on_call=None):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
                if on_call:
                    on_call(args, kwargs)
        return wrapper

    def count_sample(args, kwargs):
        # WaveSampler.sample(self, layout, positions, uniforms (n, tokens per patch), ...)
        uniforms = args[3] if len(args) > 3 else kwargs["uniforms"]
        counts["patches_sampled"] += uniforms.shape[0]
        counts["tokens_sampled"] += uniforms.shape[0] * uniforms.shape[1]
        counts["sample_calls"] += 1

    WaveSampler.sample = timed("sample", WaveSampler.sample, count_sample)
    WaveSampler.prefill = timed("prefill", WaveSampler.prefill)
    engine.encode_tiled = timed("encode", engine.encode_tiled)
    engine.decode_tiled = timed("decode", engine.decode_tiled)
    engine.CanvasRun._save_state = timed("checkpoint", engine.CanvasRun._save_state)
    writers.export = timed("export", writers.export)
    bundle_mod.load_bundle = timed("load", bundle_mod.load_bundle)
    pool_facts: dict[str, int] = {}
    run_canvas = engine.CanvasRun.run

    def run_and_record(self, *args, **kwargs):
        result = run_canvas(self, *args, **kwargs)
        pool = self.pool  # the Nearby Context Pool: live slots must not grow with the canvas
        pool_facts.update(pool_peak_slots=pool.peak, pool_capacity=pool.capacity, pool_live_at_end=len(pool),
                          pool_mib=2 * pool.k.numel() * pool.k.element_size() / 2**20, waves=len(self.waves))
        return result

    engine.CanvasRun.run = run_and_record

    start = time.perf_counter()
    rc = cli.main(argv)
    wall = time.perf_counter() - start
    status = _proc_status("self")
    timings["other"] = max(0.0, wall - sum(timings.values()))
    result = {"rc": rc, "wall_s": wall, "timings_s": timings, **counts, **pool_facts,
              "vm_hwm_kb": status.get("VmHWM"), "rss_end_kb": status.get("VmRSS"),
              "ru_maxrss_self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    Path(out_json).write_text(json.dumps(result, indent=2))
    return rc


def _proc_status(pid) -> dict[str, int]:
    """kB figures of /proc/PID/status (VmRSS, VmHWM, RssAnon, RssFile, ...); {} if gone."""
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                parts = value.split()
                if len(parts) == 2 and parts[1] == "kB":
                    fields[key] = int(parts[0])
    except OSError:
        pass
    return fields


# ---------------------------------------------------------------- the parent
def run_width(width: int, args, model_dir: Path, image: Path, work: Path) -> dict:
    out = work / f"extend_{width}x{args.height}.png"
    timings_json = work / f"timings_{width}.json"
    timings_json.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(timings_json), "--",
           "extend", str(image), "-o", str(out), "--width", str(width), "--height", str(args.height),
           "--model", str(model_dir), "--quiet", "--overwrite", "--seed", "0"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.batch:
        cmd += ["--batch", str(args.batch)]
    if args.order:
        cmd += ["--order", args.order]
    print(f"width {width}: {' '.join(cmd[4:])}", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(REPO))
    peak_anon = peak_file = peak_rss = samples = 0
    trace, last_trace = [], -1e9
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        fields = _proc_status(proc.pid)
        if fields:
            samples += 1
            peak_anon = max(peak_anon, fields.get("RssAnon", 0))
            peak_file = max(peak_file, fields.get("RssFile", 0))
            peak_rss = max(peak_rss, fields.get("VmRSS", 0))
            now = time.perf_counter() - start
            if args.trace and now - last_trace >= args.trace:
                trace.append([round(now, 2), fields.get("VmRSS", 0) // 1024, fields.get("RssAnon", 0) // 1024])
                last_trace = now
        time.sleep(args.poll)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    child = json.loads(timings_json.read_text()) if timings_json.is_file() else {}
    if proc.returncode != 0 or not child:
        raise SystemExit(f"extend at width {width} failed (exit {proc.returncode})")
    timings = child["timings_s"]
    tokens = child["tokens_sampled"]
    row = {
        "width": width, "height": args.height, "patches_sampled": child["patches_sampled"],
        "tokens_sampled": tokens, "wall_s": wall, "extend_s": child["wall_s"],
        "tok_s_sampling": tokens / max(1e-9, timings.get("sample", 0.0)),
        "tok_s_wall": tokens / max(1e-9, child["wall_s"]),
        "peak_rss_mib": child["vm_hwm_kb"] / 1024,
        "ru_maxrss_mib": usage.ru_maxrss / 1024,
        "polled_peak_rss_mib": peak_rss / 1024, "polled_peak_anon_mib": peak_anon / 1024,
        "polled_peak_file_mib": peak_file / 1024, "polls": samples,
        "timings_s": timings, "sample_calls": child["sample_calls"],
        **{key: child.get(key)
           for key in ("waves", "pool_peak_slots", "pool_capacity", "pool_live_at_end", "pool_mib")},
        "output_bytes": out.stat().st_size if out.exists() else None,
    }
    if args.trace:
        row["rss_trace"] = trace  # [seconds, VmRSS MiB, RssAnon MiB]
    if not args.keep:
        out.unlink(missing_ok=True)
    return row


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        split = argv.index("--")
        return child_main(argv[1], argv[split + 1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", default="4096,16384,38912", help="canvas widths, comma-separated")
    parser.add_argument("--height", type=int, default=512, help="canvas height (2048 = the main job)")
    parser.add_argument("--input", default=str(EXAMPLE), help="image to extend (default: the example scroll)")
    parser.add_argument("--crop", type=int, default=None,
                        help="centred square crop of the input (default: --height; 0 = the whole input)")
    parser.add_argument("--model", default=None, help="model directory (default: a random-weight small model)")
    parser.add_argument("--threads", type=int, default=None, help="passed to extend --threads (default: its own)")
    parser.add_argument("--batch", type=int, default=None, help="passed to extend --batch")
    parser.add_argument("--order", default=None, help="passed to extend --order")
    parser.add_argument("--workdir", default=None, help="where model, input and outputs go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the output PNGs")
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between RSS polls")
    parser.add_argument("--trace", type=float, default=0.0,
                        help="keep an RSS time series in the JSON, one sample per this many seconds (0 = off)")
    parser.add_argument("--quick", action="store_true", help="widths 2048,4096 at height 512: a smoke run")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.widths, args.height = "2048,4096", 512
    widths = [int(w) for w in args.widths.split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="nuwa-bench-mem."))
    work.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    common = str(HERE / "common.py")
    # set-up in subprocesses: this process stays free of torch/numpy (its RSS leaks into ru_maxrss)
    model_dir = Path(args.model) if args.model else work / "model"
    if not args.model and not (model_dir / "transformer").is_dir():
        subprocess.run([python, common, "make-model", str(model_dir)], check=True, stdout=subprocess.DEVNULL)
    crop = args.height if args.crop is None else args.crop
    image = Path(args.input)
    if crop:
        image = work / f"input_{crop}.png"
        subprocess.run([python, common, "crop", args.input, str(image), "--size", str(crop)], check=True,
                       stdout=subprocess.DEVNULL)
    info = machine_info()
    print(f"model {model_dir}, input {image} ({'crop ' + str(crop) if crop else 'whole'}), height {args.height}, "
          f"threads {args.threads or 'extend default'}; load {info['loadavg_1m']:.2f}, "
          f"{info['nuwa_train_processes']} nuwa-inf train process(es) beside us", flush=True)
    rows = []
    for width in widths:
        row = run_width(width, args, model_dir, image, work)
        rows.append(row)
        t = row["timings_s"]
        print(f"  {row['patches_sampled']} patches, {row['extend_s']:.1f} s, {row['tok_s_sampling']:.0f} tok/s "
              f"sampling, peak RSS {row['peak_rss_mib']:.0f} MiB, {row['waves']} waves, pool peak "
              f"{row['pool_peak_slots']} slots (capacity {row['pool_capacity']}, {row['pool_mib']:.0f} MiB); "
              + ", ".join(f"{k} {v:.1f}s" for k, v in t.items()), flush=True)
    print()
    phases = ["load", "encode", "prefill", "sample", "decode", "checkpoint", "export", "other"]
    print_table(["width", "patches", "wall s", "tok/s (sampling)", "tok/s (wall)", "peak RSS MiB",
                 "ru_maxrss MiB", "anon RSS MiB"] + [f"{p} s" for p in phases],
                [[r["width"], r["patches_sampled"], f"{r['extend_s']:.1f}", f"{r['tok_s_sampling']:.0f}",
                  f"{r['tok_s_wall']:.0f}", f"{r['peak_rss_mib']:.0f}", f"{r['ru_maxrss_mib']:.0f}",
                  f"{r['polled_peak_anon_mib']:.0f}"] + [f"{r['timings_s'].get(p, 0.0):.1f}" for p in phases]
                 for r in rows])
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(f"width x{last['width'] / first['width']:.1f} -> "
              f"peak RSS x{last['peak_rss_mib'] / first['peak_rss_mib']:.2f} "
              f"({first['peak_rss_mib']:.0f} -> {last['peak_rss_mib']:.0f} MiB)")
    print("timings are from one run on a shared machine (see load above); peak RSS = the child's VmHWM")
    write_json(args.json, {"benchmark": "extend_memory", "height": args.height, "input": str(args.input),
                           "crop": crop, "threads": args.threads, "machine": info, "results": rows,
                           "command": " ".join([os.path.basename(python), *sys.argv])})
    return 0


if __name__ == "__main__":
    sys.exit(main())
