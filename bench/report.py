#!/usr/bin/env python3
"""The report of a bench/compare.sh run: bp against the peers (issue 4: the MLP; issue 11:
the layer networks).

    python3 bench/report.py [--svg FILE] [--models-svg FILE] RUN.jsonl [MORE.jsonl ...]

Prints markdown to stdout: the machine and commit, one row per (configuration,
threads) with bp's µs/step and samples/s, each peer's µs/step and bp's ratio to it
(peer sec/step ÷ bp sec/step: above 1 bp is faster), bp's fraction of the GEMM peak
(bp's GFLOP/s needed ÷ the best gemm_peak.py figure at the same thread count) and the
issue's targets for the row (✓/✗ with the actual figure); then the GEMM peaks and a
count of the targets met. With several rounds (or files) every figure is the median over
them. `--svg FILE` also writes a bar chart of samples/s (log scale).

The layer networks (models_peer.py's lenet, lstm, gru, lstm100, cifar) get a table each:
one row per (batch, threads) with bp's µs/step and samples/s, each peer's µs/step, the
ratio bp speed ÷ peer speed (= peer sec/step ÷ bp sec/step; the target is ≥ 1.2 against
every peer), and bp's loss before the first and after the last step (a falling loss:
the steps did train). `--models-svg FILE` writes their bar chart.

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

# The layer networks of models_peer.py, in its order, with what they are.
MODELS = {
    "lenet": "[1, 28, 28]: conv 1→8 5×5 no bias → batch norm → relu → max pool 2 → conv 8→16 5×5 "
             "no bias → batch norm → relu → max pool 2 → flatten 256 → linear 64 → relu → linear 10",
    "lstm": "[28, 28]: LSTM 28→64, last hidden state → linear 10",
    "gru": "[28, 28]: GRU 28→64, last hidden state → linear 10",
    "lstm100": "[100, 32]: LSTM 32→128 over 100 steps, last → linear 10",
    "cifar": "[3, 32, 32]: conv 3→32 3×3 pad 1 → relu → max pool 2 → conv 32→64 3×3 pad 1 → relu "
             "→ max pool 2 → flatten 4096 → linear 128 → relu → linear 10",
}
MODEL_ORDER = {name: i for i, name in enumerate(MODELS)}
# Issue 11: bp's speed ÷ each peer's speed at the same batch and thread count.
MODEL_TARGET = 1.2


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
    machines, ends, errors, skips = [], [], [], []
    mlp, models, gemm = defaultdict(list), defaultdict(list), defaultdict(list)
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
                elif "sec_per_step" in r and (kind == "model" or "model" in r):
                    cfg = r.get("config") or f"{r['model']}-b{r['batch']}"
                    models[(cfg, int(r["threads"]), r["peer"])].append(r)
                elif "sec_per_step" in r:
                    cfg = r.get("config") or CONFIG_OF.get((r["sizes"], r["batch"]), r["sizes"])
                    mlp[(cfg, int(r["threads"]), r["peer"])].append(r)
    return machines, ends, mlp, models, gemm, errors, skips


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


class ModelCell:
    """The median over rounds of one (model configuration, threads, peer)."""

    def __init__(self, recs):
        self.recs = recs
        self.sec = statistics.median(r["sec_per_step"] for r in recs)
        self.batch = recs[0]["batch"]
        self.model = recs[0]["model"]
        self.samples = self.batch / self.sec
        self.spread = max(r.get("spread", 0.0) for r in recs)
        self.rounds = [r["sec_per_step"] for r in recs]
        self.loss_first = statistics.median(r["loss_first"] for r in recs)
        self.loss_last = statistics.median(r["loss_last"] for r in recs)


def peer_key(p):
    return (PEER_ORDER.index(p) if p in PEER_ORDER else 99, p)


def model_rows(mcells):
    """(config, threads) rows of the layer networks: by model, then batch, then threads."""
    keys = {(k[0], k[1]) for k in mcells}
    info = {(k[0], k[1]): (c.model, c.batch) for k, c in mcells.items()}
    return sorted(keys, key=lambda k: (MODEL_ORDER.get(info[k][0], 99), info[k][0], info[k][1], k[1]))


def model_tables(mcells):
    """Markdown: a table per layer network, then the count of the targets met."""
    out = []
    peers = sorted({k[2] for k in mcells}, key=peer_key)
    others = [p for p in peers if p != "bp"]
    rows = model_rows(mcells)
    met = total = 0
    missed = []
    out.append("### Layer networks: bp vs " + (", ".join(others) or "(no peer)"))
    out.append("")
    out.append(f"Ratio = bp samples/s ÷ peer samples/s (= peer sec/step ÷ bp sec/step) at the same "
               f"batch and thread count; the target is ≥ {fmt_thr(MODEL_TARGET)}x against every peer. "
               "Loss: bp's before the first step → after the last (the peers' in the JSON lines).")
    by_model = defaultdict(list)
    for row in rows:
        c = next(mcells[(row[0], row[1], p)] for p in peers if (row[0], row[1], p) in mcells)
        by_model[c.model].append((row, c.batch))
    for model in sorted(by_model, key=lambda m: (MODEL_ORDER.get(m, 99), m)):
        out.append("")
        out.append(f"**{model}** {MODELS.get(model, '')}".rstrip())
        out.append("")
        head = ["batch", "threads", "bp µs/step", "bp samples/s"]
        for p in others:
            head += [f"{p} µs/step", f"bp vs {p}"]
        head += ["bp loss", f"≥ {fmt_thr(MODEL_TARGET)}x"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---:"] * (len(head) - 2) + ["---", "---"]) + "|")
        for (cfg, t), batch in by_model[model]:
            bp = mcells.get((cfg, t, "bp"))
            line = [str(batch), str(t), fmt_us(bp.sec) if bp else "–",
                    f"{bp.samples:,.0f}" if bp else "–"]
            tl = []
            for p in others:
                c = mcells.get((cfg, t, p))
                line.append(fmt_us(c.sec) if c else "–")
                if c and bp:
                    v = c.sec / bp.sec
                    line.append(fmt_ratio(v))
                    ok = v >= MODEL_TARGET
                    total += 1
                    met += ok
                    tl.append(f"{p} {'✓' if ok else '✗'}")
                    if not ok:
                        missed.append(f"{model} b{batch} {t}t vs {p}: {fmt_ratio(v)}")
                else:
                    line.append("–")
            line.append(f"{bp.loss_first:.3f} → {bp.loss_last:.3f}" if bp else "–")
            line.append(" ".join(tl))
            out.append("| " + " | ".join(line) + " |")
    out.append("")
    out.append(f"**{met} of {total} layer-network targets met** (≥ {fmt_thr(MODEL_TARGET)}x each peer)"
               + (". Missed: " + "; ".join(missed) + "." if missed else "."))
    return out


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
    machines, ends, mlp, models, gemm, errors, skips = load(args.files)
    if not mlp and not models and not gemm:
        sys.exit("report.py: no results in " + ", ".join(args.files))
    cells, peers, others, rows, gemm_med, peak = analyse(mlp, gemm)
    mcells = {k: ModelCell(v) for k, v in models.items()}
    m = machines[0] if machines else {}
    n_rounds = max((len(c.recs) for c in list(cells.values()) + list(mcells.values())), default=0)

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
        # The scripts' defaults when compare.sh passed none: the MLP's, and models_peer.py's.
        mt_default = "2.0 s (default)" if not models else "default (MLP 2.0 s, layer networks 1.0 s)"
        rp_default = "3 (default)" if not models else "default (MLP 3, layer networks 5)"
        mt = f"{m['min_time']} s" if m.get("min_time") not in (None, "") else mt_default
        rp = m.get("repeats") if m.get("repeats") not in (None, "") else rp_default
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
    for (_, _, peer), recs in sorted(list(mlp.items()) + list(models.items())):
        r = recs[0]
        lib = "torch" if peer == "torch-compile" else peer
        if peer in versions or not isinstance(r.get(lib), str):
            continue
        blas = r.get("blas")
        if isinstance(blas, str):
            blas = re.sub(r"\s*threads=\d+", "", blas)
        versions[peer] = r[lib] + (f" ({blas})" if isinstance(blas, str) else "")
    unpinned = sorted({f"{k[0]} {k[1]}t" for k, recs in list(mlp.items()) + list(models.items())
                       if k[2] == "bp" for r in recs if r.get("pinned") is False})
    if unpinned:
        out.append("- WARNING: bp could not pin itself (taskset) in: " + ", ".join(unpinned))
    if versions:
        out.append("- versions: " + ", ".join(
            f"{p} {versions[p]}" for p in sorted(versions, key=lambda p: (
                PEER_ORDER.index(p) if p in PEER_ORDER else 99, p))))
    out.append("- ratio = peer sec/step ÷ bp sec/step at the same thread count (above 1: bp is "
               "faster); % peak = bp GFLOP/s needed ÷ best GEMM 2048² GFLOP/s at the same thread count")
    out.append("")
    met = total = unknown = 0
    missed = []
    if rows:
        met, total, unknown, missed = mlp_table(out, rows, cells, others, peak)
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

    if rows:
        out.append("")
        summary = f"**{met} of {total} targets met**"
        if unknown:
            summary += f" ({unknown} not evaluated: peer or GEMM peak missing)"
        out.append(summary + (". Missed: " + "; ".join(missed) + "." if missed else "."))
    if mcells:
        if out[-1]:
            out.append("")
        out.extend(model_tables(mcells))

    allcells = list(cells.items()) + list(mcells.items())
    noisy = [(c.spread, k) for k, c in allcells if c.spread > 0.25]
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

    sub = []
    if m:
        sub.append(f"{m.get('cpu') or '?'}, {m.get('cpus', '?')} CPUs")
        sub.append(f"commit {m.get('commit', '?')}")
        sub.append(str(m.get("date", ""))[:16].replace("T", " "))
    subtitle = " · ".join(x for x in sub if x)
    if args.svg and rows:
        with open(args.svg, "w", encoding="utf-8") as f:
            f.write(svg(rows, peers, cells, subtitle))
    if args.models_svg and mcells:
        mpeers = sorted({k[2] for k in mcells}, key=peer_key)
        labels = {(cfg, t): f"b{c.batch} ·{t}t" for (cfg, t, _), c in mcells.items()}
        model_of = {cfg: c.model for (cfg, _, _), c in mcells.items()}
        with open(args.models_svg, "w", encoding="utf-8") as f:
            f.write(svg(model_rows(mcells), mpeers, mcells, subtitle,
                        title="Layer networks, training step: bp vs peers (samples/s, higher is better)",
                        xlabel="network, batch · threads", labels=labels, band_key=model_of.get,
                        band_titles=True, width=max(1000, 100 + 60 * len(labels))))


def mlp_table(out, rows, cells, others, peak):
    """Appends the MLP table to `out`; returns (met, total, unknown, missed) of its targets."""
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
    return met, total, unknown, missed


def nice_count(v):
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:g}{suffix}"
    return f"{v:g}"


def svg(rows, peers, cells, subtitle, width=1000, height=480,
        title="MLP training step: bp vs peers (samples/s, higher is better)",
        xlabel="configuration · threads", labels=None, band_key=None, band_titles=False):
    """A bar chart of samples/s (log scale): a group of bars per row (config, threads), one bar
    per peer. `labels` maps a row to its label (default "config ·Tt"); `band_key` maps a
    config to what a light background band groups (default the config itself), and with
    `band_titles` that key is also written once under its band."""
    left, right, top, bottom = 78, 20, 78, (80 if band_titles else 62)
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
      f'{escape(title)}</text>')
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
    spans = []  # [key, first row, last row]
    for i, (cfg, _) in enumerate(rows):
        key = band_key(cfg) if band_key else cfg
        if key != prev:
            band += 1
            prev = key
            spans.append([key, i, i])
        spans[-1][2] = i
        if band % 2 == 0:
            a(f'<rect x="{left + i * gw:.1f}" y="{top}" width="{gw:.1f}" height="{ph}" fill="#f3f3f3"/>')
    if band_titles:
        for key, i0, i1 in spans:
            a(f'<text x="{left + (i0 + i1 + 1) / 2 * gw:.1f}" y="{top + ph + 36}" font-size="13" '
              f'font-weight="bold" text-anchor="middle">{escape(str(key))}</text>')
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
          f'text-anchor="middle">{escape(labels[(cfg, t)] if labels else f"{cfg} ·{t}t")}</text>')
    # Axes.
    a(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="#333333" stroke-width="1.2"/>')
    a(f'<line x1="{left}" y1="{base}" x2="{left + pw}" y2="{base}" stroke="#333333" stroke-width="1.2"/>')
    a(f'<text x="{left + pw / 2:.1f}" y="{height - 14}" font-size="13" text-anchor="middle">'
      f'{escape(xlabel)}</text>')
    a(f'<text x="20" y="{top + ph / 2:.1f}" font-size="13" text-anchor="middle" '
      f'transform="rotate(-90 20 {top + ph / 2:.1f})">{escape("samples / s (log scale)")}</text>')
    a("</svg>")
    return "\n".join(s) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", help="JSONL files from bench/compare.sh")
    ap.add_argument("--svg", metavar="FILE", help="also write a bar chart of the MLP's samples/s here")
    ap.add_argument("--models-svg", metavar="FILE",
                    help="also write a bar chart of the layer networks' samples/s here")
    report(ap.parse_args())


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `report.py x.jsonl | head` ends quietly
    main()
