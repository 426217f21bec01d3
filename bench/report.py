#!/usr/bin/env python3
"""The issue-4 report of a bench/compare.sh run: bp against the peers.

    python3 bench/report.py [--svg FILE] RUN.jsonl [MORE.jsonl ...]

Prints markdown to stdout: the machine and commit, one row per (configuration,
threads) with bp's µs/step and samples/s, each peer's µs/step and bp's ratio to it
(peer sec/step ÷ bp sec/step: above 1 bp is faster), bp's fraction of the GEMM peak
(bp's GFLOP/s needed ÷ the best gemm_peak.py figure at the same thread count) and the
issue's targets for the row (✓/✗ with the actual figure); then the GEMM peaks and a
count of the targets met. With several rounds (or files) every figure is the median over
them. `--svg FILE` also writes a bar chart of samples/s (log scale).

Standard library only. Also reads the files of /work/shared/bench/run_all.sh (no bp).
"""
import argparse
import json
import math
import re
import statistics
import sys
from collections import defaultdict
from xml.sax.saxutils import escape

# (name, sizes, batch), in the report's order.
CONFIGS = [
    ("tiny-b1", "2,8,1", 1),
    ("tiny-b32", "2,8,1", 32),
    ("small", "64,32,10", 32),
    ("medium", "784,128,10", 64),
    ("large", "784,1024,1024,10", 256),
]
CONFIG_ORDER = {name: i for i, (name, _, _) in enumerate(CONFIGS)}
CONFIG_OF = {(sizes, batch): name for name, sizes, batch in CONFIGS}
PEER_ORDER = ["bp", "jax", "torch", "numpy", "torch-compile", "candle"]
COLOURS = {
    "bp": "#d62728",
    "jax": "#1f77b4",
    "torch": "#ff9f1c",
    "numpy": "#7f7f7f",
    "torch-compile": "#9467bd",
    "candle": "#8c564b",
}
EXTRA_COLOURS = ["#17becf", "#bcbd22", "#e377c2", "#2ca02c"]


def targets(config, threads):
    """Issue 4's targets for a row: ("ratio", peer, x) = peer sec/step ÷ bp's ≥ x;
    ("best", None, x) = the fastest peer's ÷ bp's ≥ x; ("peak", None, f) = bp's GFLOP/s
    needed ÷ GEMM peak ≥ f."""
    if config in ("tiny-b1", "tiny-b32"):
        return [("ratio", "jax", 20.0), ("ratio", "torch", 200.0)]
    if config == "small":
        return [("ratio", "jax", 3.0 if threads == 1 else 1.0)]
    if config == "medium":
        return [("ratio", "jax", 1.0), ("ratio", "torch", 2.0)]
    if config == "large":
        t = [("best", None, 0.95)]
        if threads == 1:
            t.append(("peak", None, 0.85))
        return t
    return []


def flops_needed(sizes, batch):
    """As _common.flops_needed: forward and dW for every layer, dX for all but the first."""
    s = [int(v) for v in str(sizes).split(",")]
    pairs = [i * o for i, o in zip(s[:-1], s[1:])]
    return 2 * batch * (2 * sum(pairs) + sum(pairs[1:]))


def fmt_ratio(x):
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:,.0f}x"
    if x >= 10:
        return f"{x:.1f}x"
    return f"{x:.2f}x"


def fmt_us(sec):
    if sec is None:
        return "–"
    us = sec * 1e6
    return f"{us:,.2f}" if us < 10 else f"{us:,.1f}"


def fmt_thr(x):
    return f"{x:.2f}".rstrip("0").rstrip(".")


def load(paths):
    machines, ends, mlp, gemm, errors, skips = [], [], defaultdict(list), defaultdict(list), [], []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError as e:
                    print(f"report.py: {path}:{n}: skipped, not JSON ({e})", file=sys.stderr)
                    continue
                kind = r.get("kind")
                if kind == "machine":
                    machines.append(r)
                elif kind == "end":
                    ends.append(r)
                elif kind == "error":
                    errors.append(r)
                elif kind == "skip":
                    skips.append(r)
                elif kind == "gemm" or (kind is None and "lib" in r and "gflops" in r):
                    gemm[(r["lib"], int(r["threads"]))].append(r)
                elif "sec_per_step" in r:
                    cfg = r.get("config") or CONFIG_OF.get((r["sizes"], r["batch"]), r["sizes"])
                    mlp[(cfg, int(r["threads"]), r["peer"])].append(r)
    return machines, ends, mlp, gemm, errors, skips


class Cell:
    """The median over rounds of one (config, threads, peer)."""

    def __init__(self, recs):
        self.recs = recs
        self.sec = statistics.median(r["sec_per_step"] for r in recs)
        self.batch = recs[0]["batch"]
        self.sizes = recs[0]["sizes"]
        self.samples = self.batch / self.sec
        self.gflops_needed = flops_needed(self.sizes, self.batch) / self.sec / 1e9
        self.spread = max(r.get("spread", 0.0) for r in recs)
        self.rounds = [r["sec_per_step"] for r in recs]


def analyse(mlp, gemm):
    cells = {k: Cell(v) for k, v in mlp.items()}
    peers = sorted({k[2] for k in cells},
                   key=lambda p: (PEER_ORDER.index(p) if p in PEER_ORDER else 99, p))
    others = [p for p in peers if p != "bp"]
    rows = sorted({(k[0], k[1]) for k in cells},
                  key=lambda k: (CONFIG_ORDER.get(k[0], 99), k[0], k[1]))
    gemm_med = {k: statistics.median(r["gflops"] for r in v) for k, v in gemm.items()}
    peak = {}
    for (lib, t), g in gemm_med.items():
        if g > peak.get(t, (0.0, None))[0]:
            peak[t] = (g, lib)
    return cells, peers, others, rows, gemm_med, peak


def evaluate(row, cells, others, peak):
    """[(label, value_text, ok or None)] for the row's targets."""
    cfg, t = row
    bp = cells.get((cfg, t, "bp"))
    out = []
    for kind, peer, x in targets(cfg, t):
        if kind == "ratio":
            label = f"{peer} ≥{fmt_thr(x)}x"
            c = cells.get((cfg, t, peer))
            if bp is None or c is None:
                out.append((label, "n/a", None))
            else:
                v = c.sec / bp.sec
                out.append((label, fmt_ratio(v), v >= x))
        elif kind == "best":
            present = [(cells[(cfg, t, p)].sec, p) for p in others if (cfg, t, p) in cells]
            if bp is None or not present:
                out.append((f"best peer ≥{fmt_thr(x)}x", "n/a", None))
            else:
                sec, p = min(present)
                v = sec / bp.sec
                out.append((f"best ({p}) ≥{fmt_thr(x)}x", fmt_ratio(v), v >= x))
        elif kind == "peak":
            label = f"GEMM peak ≥{x * 100:.0f}%"
            if bp is None or t not in peak:
                out.append((label, "n/a", None))
            else:
                v = bp.gflops_needed / peak[t][0]
                out.append((label, f"{v * 100:.1f}%", v >= x))
    return out


def report(args):
    machines, ends, mlp, gemm, errors, skips = load(args.files)
    if not mlp and not gemm:
        sys.exit("report.py: no results in " + ", ".join(args.files))
    cells, peers, others, rows, gemm_med, peak = analyse(mlp, gemm)
    m = machines[0] if machines else {}
    n_rounds = max((len(c.recs) for c in cells.values()), default=0)

    out = []
    title = m.get("tag") or ", ".join(args.files)
    out.append(f"## bp vs peers: {title}")
    out.append("")
    if m:
        cores = f", {m['cores_per_socket']} cores/socket" if m.get("cores_per_socket") else ""
        out.append(f"- machine: {m.get('cpu') or '?'} ({m.get('cpus', '?')} CPUs{cores}), "
                   f"Linux {m.get('kernel', '?')}, {m.get('rustc', '?')}, "
                   f"Python {m.get('python', '?')}; {m.get('date', '?')}")
        built = f"; bp binary built {m['bp_binary_time']}" if m.get("bp_binary_time") else ""
        out.append(f"- commit: {m.get('commit', '?')} (branch {m.get('branch', '?')}){built}")
        mt = f"{m['min_time']} s" if m.get("min_time") not in (None, "") else "2.0 s (default)"
        rp = m.get("repeats") if m.get("repeats") not in (None, "") else "3 (default)"
        out.append(f"- settings: --min-time {mt}, --repeats {rp}, rounds {m.get('rounds', n_rounds)}; "
                   f"every process pinned with taskset to CPUs 0..T-1")
        if m.get("loadavg"):
            end = ends[0] if ends else {}
            dur = ""
            if end.get("date") and m.get("date"):
                try:
                    from datetime import datetime
                    secs = (datetime.fromisoformat(end["date"]) - datetime.fromisoformat(m["date"])).total_seconds()
                    dur = f"; the run took {secs / 60:.1f} min"
                except ValueError:
                    pass
            out.append(f"- load average (1/5/15 min) at the start: {m['loadavg']}"
                       + (f", at the end: {end['loadavg']}" if end.get("loadavg") else "")
                       + f"{dur} (anything else running skews the figures, 2 threads most)")
    else:
        out.append("- machine: unknown (no machine line in the input)")
        out.append("- commit: unknown")
    versions = {}  # peer -> "version (blas)"
    for (_, _, peer), recs in sorted(mlp.items()):
        r = recs[0]
        lib = "torch" if peer == "torch-compile" else peer
        if peer in versions or not isinstance(r.get(lib), str):
            continue
        blas = r.get("blas")
        if isinstance(blas, str):
            blas = re.sub(r"\s*threads=\d+", "", blas)
        versions[peer] = r[lib] + (f" ({blas})" if isinstance(blas, str) else "")
    unpinned = sorted({f"{k[0]} {k[1]}t" for k, recs in mlp.items() if k[2] == "bp"
                       for r in recs if r.get("pinned") is False})
    if unpinned:
        out.append("- WARNING: bp could not pin itself (taskset) in: " + ", ".join(unpinned))
    if versions:
        out.append("- versions: " + ", ".join(
            f"{p} {versions[p]}" for p in sorted(versions, key=lambda p: (
                PEER_ORDER.index(p) if p in PEER_ORDER else 99, p))))
    out.append("- ratio = peer sec/step ÷ bp sec/step at the same thread count (above 1: bp is "
               "faster); % peak = bp GFLOP/s needed ÷ best GEMM 2048² GFLOP/s at the same thread count")
    out.append("")

    head = ["config", "threads", "bp µs/step", "bp samples/s"]
    for p in others:
        head += [f"{p} µs/step", f"bp vs {p}"]
    head += ["% GEMM peak", "targets"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 4) + ["---:", "---"]) + "|")
    met = total = unknown = 0
    missed = []
    for row in rows:
        cfg, t = row
        bp = cells.get((cfg, t, "bp"))
        line = [cfg, str(t), fmt_us(bp.sec) if bp else "–", f"{bp.samples:,.0f}" if bp else "–"]
        for p in others:
            c = cells.get((cfg, t, p))
            line.append(fmt_us(c.sec) if c else "–")
            line.append(fmt_ratio(c.sec / bp.sec) if (c and bp) else "–")
        line.append(f"{bp.gflops_needed / peak[t][0] * 100:.1f}%" if (bp and t in peak) else "–")
        tl = []
        for label, value, ok in evaluate(row, cells, others, peak):
            total += 1
            if ok is None:
                unknown += 1
                tl.append(f"{label}: n/a ?")
            else:
                met += ok
                tl.append(f"{label}: {value} {'✓' if ok else '✗'}")
                if not ok:
                    missed.append(f"{cfg} {t}t {label}: {value}")
        line.append("; ".join(tl) if tl else "")
        out.append("| " + " | ".join(line) + " |")

    if gemm_med:
        out.append("")
        out.append("| GEMM 2048² fp32 | threads | GFLOP/s" + (" (median; rounds)" if n_rounds > 1 else "") + " |")
        out.append("|---|---|---:|")
        for (lib, t), g in sorted(gemm_med.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            runs = ""
            if len(gemm[(lib, t)]) > 1:
                runs = "; " + " / ".join(f"{r['gflops']:.1f}" for r in gemm[(lib, t)])
            best = " (peak)" if peak.get(t, (None, None))[1] == lib else ""
            out.append(f"| {lib}{best} | {t} | {g:.1f}{runs} |")

    out.append("")
    summary = f"**{met} of {total} targets met**"
    if unknown:
        summary += f" ({unknown} not evaluated: peer or GEMM peak missing)"
    out.append(summary + (". Missed: " + "; ".join(missed) + "." if missed else "."))

    noisy = [(c.spread, k) for k, c in cells.items() if c.spread > 0.25]
    if noisy:
        noisy.sort(reverse=True)
        out.append("")
        out.append("Noisy (spread of the repeats > 25%): " + ", ".join(
            f"{k[0]} {k[1]}t {k[2]} {s * 100:.0f}%" for s, k in noisy[:8]))
    if skips or errors:
        out.append("")
        for s in skips:
            out.append(f"- skipped {s.get('peer')}: {s.get('reason', '')}")
        for e in errors:
            what = e.get("peer") or e.get("lib")
            where = f"{e.get('config', 'gemm')} {e.get('threads')}t"
            out.append(f"- failed: {what} {where} round {e.get('round')} (exit {e.get('rc')})")
    print("\n".join(out))

    if args.svg:
        sub = []
        if m:
            sub.append(f"{m.get('cpu') or '?'}, {m.get('cpus', '?')} CPUs")
            sub.append(f"commit {m.get('commit', '?')}")
            sub.append(str(m.get("date", ""))[:16].replace("T", " "))
        with open(args.svg, "w", encoding="utf-8") as f:
            f.write(svg(rows, peers, cells, " · ".join(s for s in sub if s)))


def nice_count(v):
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:g}{suffix}"
    return f"{v:g}"


def svg(rows, peers, cells, subtitle, width=1000, height=480):
    left, right, top, bottom = 78, 20, 78, 62
    pw, ph = width - left - right, height - top - bottom
    colours = dict(COLOURS)
    spare = iter(EXTRA_COLOURS)
    for p in peers:
        if p not in colours:
            colours[p] = next(spare, "#000000")
    vals = [c.samples for c in cells.values() if c.samples > 0]
    lo_e = math.floor(math.log10(min(vals))) if vals else 0
    hi_e = math.ceil(math.log10(max(vals))) if vals else 1
    if hi_e == lo_e:
        hi_e += 1

    def y(v):
        return top + ph - (math.log10(v) - lo_e) / (hi_e - lo_e) * ph

    s = []
    a = s.append
    a(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
      f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">')
    a(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>')
    a(f'<text x="{left}" y="26" font-size="17" font-weight="bold">'
      f'{escape("MLP training step: bp vs peers (samples/s, higher is better)")}</text>')
    if subtitle:
        a(f'<text x="{left}" y="46" font-size="12" fill="#555555">{escape(subtitle)}</text>')
    # Legend, top right.
    lx = width - right - 88 * len(peers)
    for i, p in enumerate(peers):
        x = lx + 88 * i
        a(f'<rect x="{x}" y="54" width="12" height="12" fill="{colours[p]}"/>')
        a(f'<text x="{x + 17}" y="64" font-size="12">{escape(p)}</text>')
    ng = max(1, len(rows))
    gw = pw / ng
    # Alternate a light band per configuration so its 1t and 2t groups read as a pair.
    band = 0
    prev = None
    for i, (cfg, _) in enumerate(rows):
        if cfg != prev:
            band += 1
            prev = cfg
        if band % 2 == 0:
            a(f'<rect x="{left + i * gw:.1f}" y="{top}" width="{gw:.1f}" height="{ph}" fill="#f3f3f3"/>')
    # Grid: decades labelled, 2..9 faint.
    for e in range(lo_e, hi_e + 1):
        v = 10.0 ** e
        yy = y(v)
        a(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + pw}" y2="{yy:.1f}" stroke="#bbbbbb" stroke-width="1"/>')
        a(f'<text x="{left - 6}" y="{yy + 4:.1f}" font-size="12" text-anchor="end">{nice_count(v)}</text>')
        if e < hi_e:
            for k in range(2, 10):
                yk = y(k * v)
                a(f'<line x1="{left}" y1="{yk:.1f}" x2="{left + pw}" y2="{yk:.1f}" '
                  f'stroke="#e4e4e4" stroke-width="0.6"/>')
    # Bars.
    nb = max(1, len(peers))
    bw = gw * 0.8 / nb
    base = top + ph
    for i, (cfg, t) in enumerate(rows):
        x0 = left + i * gw + gw * 0.1
        for j, p in enumerate(peers):
            c = cells.get((cfg, t, p))
            if c is None:
                continue
            yy = y(c.samples)
            tip = f"{p} {cfg} {t}t: {c.samples:,.0f} samples/s, {c.sec * 1e6:,.1f} µs/step"
            a(f'<rect x="{x0 + j * bw:.1f}" y="{yy:.1f}" width="{bw - 1:.1f}" height="{base - yy:.1f}" '
              f'fill="{colours[p]}"><title>{escape(tip)}</title></rect>')
        a(f'<text x="{left + (i + 0.5) * gw:.1f}" y="{base + 18}" font-size="11.5" '
          f'text-anchor="middle">{escape(f"{cfg} ·{t}t")}</text>')
    # Axes.
    a(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="#333333" stroke-width="1.2"/>')
    a(f'<line x1="{left}" y1="{base}" x2="{left + pw}" y2="{base}" stroke="#333333" stroke-width="1.2"/>')
    a(f'<text x="{left + pw / 2:.1f}" y="{height - 14}" font-size="13" text-anchor="middle">'
      f'{escape("configuration · threads")}</text>')
    a(f'<text x="20" y="{top + ph / 2:.1f}" font-size="13" text-anchor="middle" '
      f'transform="rotate(-90 20 {top + ph / 2:.1f})">{escape("samples / s (log scale)")}</text>')
    a("</svg>")
    return "\n".join(s) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="JSONL files from bench/compare.sh")
    ap.add_argument("--svg", metavar="FILE", help="also write a bar chart of samples/s here")
    report(ap.parse_args())


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `report.py x.jsonl | head` ends quietly
    main()
