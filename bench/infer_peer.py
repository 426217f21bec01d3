"""Peer benchmark for inference latency at batch 1: PyTorch eager or ONNX Runtime.

The counterpart of `examples/infer.rs` (bp). One call is the network's forward pass on
one sample, in evaluation mode (batch norm with its running statistics):

  torch        `net(x)` under `torch.inference_mode()`, eager, x a tensor made once
  onnxruntime  the model `torch.onnx.export` wrote (TorchScript exporter, opset 17, static
               batch 1) to a temporary file, in an InferenceSession with the default graph
               optimizations (ORT_ENABLE_ALL), intra_op_num_threads = --threads,
               inter_op_num_threads = 1, sequential execution. One call is
               `session.run_with_iobinding(binding)`, input and output bound once to
               OrtValues (ORT's allocation-free path, the counterpart of bp's
               `predict_into`; 3 µs faster than `run` here); `session.run(None, {"x": x})`
               is timed beside it (`run_sec_per_call`, the counterpart of `predict`).

Models (per-sample input shapes, PyTorch's default initialization and layouts, as
`models_peer.py` and the project's examples define them):

  mlp    [784]:       linear 784→128 → relu → linear 10   (the project's `mnist` example)
  lenet  [1, 28, 28]: conv 1→8 5×5 no bias → batch norm → relu → max pool 2 → conv 8→16
                      5×5 no bias → batch norm → relu → max pool 2 → flatten 256 →
                      linear 64 → relu → linear 10        (models_peer.py's `lenet`)
  lstm   [28, 28]:    LSTM 28→64 (gates i, f, g, o, both biases), last hidden state →
                      linear 10                           (models_peer.py's `lstm`)

Usage:  python infer_peer.py --peer torch --model lenet --threads 1
Prints one JSON line: peer, model, batch (1), threads, sec_per_call (the median over
--repeats repeats of >= --min-time seconds each, after a warm-up of >= 0.2 s and 100
calls), calls_per_sec, the repeats, out_sum (the sum of the logits), the library's
version, and for onnxruntime run_sec_per_call and the graph's operators. The process is
pinned to CPUs 0..threads-1 and every library is told the same thread count before it is
imported.
`bench/infer.sh` runs it beside bp; this is a benchmark, not a test (CI has no PyTorch).
"""
import argparse, json, os, statistics, sys, tempfile, time, warnings

p = argparse.ArgumentParser()
p.add_argument("--peer", choices=["torch", "onnxruntime"], required=True)
p.add_argument("--model", choices=["mlp", "lenet", "lstm"], required=True)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--min-time", type=float, default=0.25)
p.add_argument("--repeats", type=int, default=7)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
if not 1 <= a.threads <= (os.cpu_count() or 1):
    sys.exit(f"--threads must be in 1..{os.cpu_count()}")
os.sched_setaffinity(0, set(range(a.threads)))
for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[v] = str(a.threads)

import numpy as np  # noqa: E402
import torch, torch.nn as nn  # noqa: E401,E402

torch.set_num_threads(a.threads)
torch.set_num_interop_threads(1)
torch.manual_seed(a.seed)

SHAPES = {"mlp": (784,), "lenet": (1, 28, 28), "lstm": (28, 28)}


class Rec(nn.Module):
    def __init__(self, f, h):
        super().__init__(); self.r = nn.LSTM(f, h, batch_first=True); self.fc = nn.Linear(h, 10)

    def forward(self, x):
        return self.fc(self.r(x)[0][:, -1])


net = {
    "mlp": lambda: nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)),
    "lenet": lambda: nn.Sequential(
        nn.Conv2d(1, 8, 5, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10)),
    "lstm": lambda: Rec(28, 64),
}[a.model]().eval()
xn = np.random.default_rng(a.seed + 1).standard_normal((1,) + SHAPES[a.model]).astype(np.float32)
x = torch.from_numpy(xn)


def timeit(call, other=None):
    """Warm-up, calibration, then --repeats repeats of `calls` calls of `call` (and as many
    of `other`, right after each): seconds per call of each repeat."""
    t = time.perf_counter(); n = 0
    while time.perf_counter() - t < 0.2 or n < 100:
        call(); other and other(); n += 1
    k = 64
    while True:
        t = time.perf_counter()
        for _ in range(k):
            call()
        dt = time.perf_counter() - t
        if dt >= 0.02:
            break
        k *= 4
    calls = max(1, int(a.min_time / (dt / k)) + 1)
    ts, us = [], []
    for _ in range(a.repeats):
        for f, out in ((call, ts), (other, us)):
            if f is None:
                continue
            t = time.perf_counter()
            for _ in range(calls):
                f()
            out.append((time.perf_counter() - t) / calls)
    return calls, ts, us


with torch.inference_mode():
    ref = net(x).numpy().copy()

if a.peer == "torch":
    def call():
        return net(x)

    with torch.inference_mode():
        calls, ts, _ = timeit(call)
    extra = {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
else:
    import onnx  # noqa: E402
    import onnxruntime as ort  # noqa: E402

    warnings.filterwarnings("ignore")  # the exporter's deprecation and LSTM batch notes
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"{a.model}.onnx")
        torch.onnx.export(net, (x,), path, input_names=["x"], output_names=["y"],
                          opset_version=17, dynamo=False)
        ops = sorted({n.op_type for n in onnx.load(path).graph.node})
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {"x": xn}
    binding = sess.io_binding()
    binding.bind_ortvalue_input("x", ort.OrtValue.ortvalue_from_numpy(xn))
    y_out = ort.OrtValue.ortvalue_from_shape_and_type(list(ref.shape), np.float32)
    binding.bind_ortvalue_output("y", y_out)
    sess.run_with_iobinding(binding)
    for name, out in (("run", sess.run(None, feed)[0]), ("iobinding", y_out.numpy())):
        if not np.allclose(out, ref, rtol=1e-4, atol=1e-5):
            sys.exit(f"onnxruntime ({name}) and torch disagree: {out} vs {ref}")

    calls, ts, us = timeit(lambda: sess.run_with_iobinding(binding), lambda: sess.run(None, feed))
    extra = {"run_sec_per_call": statistics.median(us), "repeats_run": us, "onnx_ops": ops,
             "onnxruntime": ort.__version__, "torch": torch.__version__}

sec = statistics.median(ts)
print(json.dumps({"peer": a.peer, "model": a.model, "batch": 1, "threads": a.threads,
                  "sec_per_call": sec, "calls_per_sec": 1 / sec, "calls": calls,
                  "repeats_sec_per_call": ts,
                  "spread": (max(ts) - min(ts)) / sec, "out_sum": float(ref.sum()), **extra}))
