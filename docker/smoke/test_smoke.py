"""Tests for smoke.py and server.py, runnable without torch or a GPU.

Why it exists: the smoke test decides whether an image is pushed, so its policy must be right
on machines that have no GPU and no torch. Fake torch modules imitate an H200 machine and a
CPU-only install; the real no-torch path runs as well. The fixtures in fixtures/ are outputs
the Rust side (crates/docker) parses; a test checks they still have the shape smoke.py emits.

Run from the repository root:
  python3 -m unittest discover -s docker/smoke -p 'test_*.py' -v
Rewrite the fixtures after a deliberate schema change:
  python3 docker/smoke/test_smoke.py --write-fixtures
"""

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import smoke  # noqa: E402

FIXTURES = os.path.join(HERE, "fixtures")
GPU_FIXTURE_ENV = {"CUDA_VERSION": "11.8.0", "NV_CUDNN_VERSION": "8.9.6.50",
                   "HEADROOM_SMOKE_REQUIRE_CUDA": "1", "HEADROOM_SMOKE_REQUIRE_TORCH": "1",
                   "HEADROOM_SMOKE_TORCH_VERSION": "2.0.1", "HEADROOM_SMOKE_MIN_TFLOPS": "1",
                   "HEADROOM_SMOKE_MODEL": "hf-internal-testing/tiny-random-bert"}


class FakeTensor(object):
    """Shapes only, or (from torch.tensor) values too: a matmul and a conv of 2-D lists."""

    def __init__(self, shape, device="cpu", dtype="float32", data=None):
        self.shape, self.device, self.dtype, self.data = tuple(shape), device, dtype, data

    def to(self, device):
        return FakeTensor(self.shape, device, self.dtype, self.data)

    def __matmul__(self, other):
        data = None
        if self.data is not None and other.data is not None:
            cols = list(zip(*other.data))
            data = [[sum(x * y for x, y in zip(row, col)) for col in cols] for row in self.data]
        return FakeTensor((self.shape[0], other.shape[1]), self.device, self.dtype, data)

    def tolist(self):
        return self.data


class FakeTorch(object):
    """Just enough of torch for smoke.py: an H200 machine (cuda=True) or CPU-only."""

    def __init__(self, cuda=True, bf16=True, cuda_version="11.8", wrong_by=0):
        self.__version__ = "2.0.1+cu118" if cuda else "2.0.1+cpu"
        self.float16, self.bfloat16, self.float32 = "float16", "bfloat16", "float32"
        self.version = types.SimpleNamespace(cuda=cuda_version if cuda else None)
        self.backends = types.SimpleNamespace(cudnn=types.SimpleNamespace(
            version=lambda: 8700 if cuda else None, is_available=lambda: cuda))
        self.synchronized = 0
        self.matmuls, self.convs = [], []
        self.wrong_by = wrong_by  # a broken device: every result off by this much

        def conv2d(image, kernel):
            self.convs.append((image.device, image.dtype))
            out = smoke.conv_reference(image.data[0][0], kernel.data[0][0])
            out = [[v + self.wrong_by for v in row] for row in out]
            return FakeTensor((1, 1, len(out), len(out[0])), image.device, image.dtype, [[out]])

        self.nn = types.SimpleNamespace(functional=types.SimpleNamespace(conv2d=conv2d))

        def synchronize():
            self.synchronized += 1

        self.cuda = types.SimpleNamespace(
            is_available=lambda: cuda, device_count=lambda: 1 if cuda else 0,
            get_device_name=lambda i=0: "NVIDIA H200", is_bf16_supported=lambda: bf16,
            get_device_properties=lambda i=0: types.SimpleNamespace(
                name="NVIDIA H200", major=9, minor=0, total_memory=150_000_000_000),
            synchronize=synchronize, reset_peak_memory_stats=lambda: None,
            max_memory_allocated=lambda: 25165824)

    def randn(self, *shape, **kw):
        return FakeTensor(shape, kw.get("device", "cpu"), kw.get("dtype", "float32"))

    def tensor(self, data, device="cpu", dtype="int64"):
        return FakeTensor((len(data), len(data[0])), device, dtype, data)

    def matmul(self, a, b):
        self.matmuls.append((a.device, a.dtype, a.shape))
        out = a @ b
        if out.data is not None:
            out.data = [[v + self.wrong_by for v in row] for row in out.data]
        return out

    def no_grad(self):
        return contextlib.nullcontext()


class FakeModel(object):
    def __init__(self):
        self.device, self.calls = None, []

    def to(self, device):
        self.device = device
        return self

    def eval(self):
        return self

    def __call__(self, **inputs):
        self.calls.append(inputs)


def fake_transformers(fail_model=False, tokenizer=True):
    calls = {}
    model = FakeModel()

    def model_from_pretrained(name, **kw):
        calls["model"] = (name, kw)
        if fail_model:
            raise OSError("no such model: %s" % name)
        return model

    def tokenizer_from_pretrained(name, **kw):
        calls["tokenizer"] = (name, kw)
        if not tokenizer:
            raise ValueError("no tokenizer")
        return lambda text, return_tensors: {"input_ids": FakeTensor((1, 5), "cpu", "int64")}

    module = types.SimpleNamespace(
        AutoModel=types.SimpleNamespace(from_pretrained=model_from_pretrained),
        AutoTokenizer=types.SimpleNamespace(from_pretrained=tokenizer_from_pretrained))
    return module, calls, model


def check(report, name):
    found = [c for c in report["checks"] if c["name"] == name]
    return found[0] if found else None


def gpu_fixture():
    """With a clock that ticks 0.5 ms per reading, so the saved numbers are stable."""
    ticks = iter(range(10 ** 6))
    original, smoke.time = smoke.time, types.SimpleNamespace(perf_counter=lambda: next(ticks) * 0.0005)
    drivers = smoke.read_driver, smoke.read_cuda_driver
    smoke.read_driver, smoke.read_cuda_driver = (lambda: "550.54.15"), (lambda: "12.4")
    try:
        return smoke.build_report(FakeTorch(), GPU_FIXTURE_ENV, transformers=fake_transformers()[0])
    finally:
        smoke.time = original
        smoke.read_driver, smoke.read_cuda_driver = drivers


def cpu_fixture():
    return smoke.build_report(None, {}, "No module named 'torch'")


def shape(value):
    """Keys and JSON types, recursively; int and float are both 'number'."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return type(value).__name__
    return "number"


def write_fixtures():
    os.makedirs(FIXTURES, exist_ok=True)
    for name, report in (("gpu-fake-h200.json", gpu_fixture()), ("cpu-no-torch.json", cpu_fixture())):
        with open(os.path.join(FIXTURES, name), "w") as f:
            f.write(smoke.render(report, indent=2) + "\n")


class CollectTest(unittest.TestCase):
    def test_gpu_branch(self):
        torch = FakeTorch()
        r = smoke.build_report(torch, {})
        self.assertEqual((r["torch"], r["cuda"], r["cudnn"]), ("2.0.1+cu118", "11.8", 8700))
        self.assertEqual(r["gpus"], [{"index": 0, "name": "NVIDIA H200", "capability": "9.0",
                                      "memory_bytes": 150_000_000_000}])
        self.assertEqual((r["matmul_check"]["device"], r["matmul_check"]["max_error"]), ("cuda", 0))
        self.assertEqual((r["conv"]["device"], r["conv"]["cudnn"], r["conv"]["max_error"]),
                         ("cuda", True, 0))
        self.assertEqual(torch.convs, [("cuda", "bfloat16")])
        self.assertEqual((r["cuda_available"], r["device_count"], r["devices"]), (True, 1, ["NVIDIA H200"]))
        m = r["matmul"]
        self.assertEqual((m["device"], m["backend"], m["n"], m["dtype"]), ("cuda", "torch", 2048, "bfloat16"))
        self.assertGreater(m["tflops"], 0)
        self.assertEqual(len(torch.matmuls), 2 + smoke.GPU_ITERS)  # checked + warm-up + timed
        self.assertGreaterEqual(torch.synchronized, 2)
        self.assertEqual(r["peak_gpu_memory_bytes"], 25165824)
        self.assertEqual((r["model"], r["model_reason"]), ("skipped", smoke.NO_MODEL))
        self.assertTrue(r["ok"])

    def test_gpu_without_bf16_uses_float16_and_n_override(self):
        r = smoke.build_report(FakeTorch(bf16=False), {"HEADROOM_SMOKE_N": "256"})
        self.assertEqual((r["matmul"]["dtype"], r["matmul"]["n"]), ("float16", 256))

    def test_cpu_torch(self):
        r = smoke.build_report(FakeTorch(cuda=False), {})
        self.assertEqual((r["cuda"], r["cudnn"], r["cuda_available"], r["devices"]), (None, None, False, []))
        m = r["matmul"]
        self.assertEqual((m["device"], m["backend"], m["n"], m["dtype"]), ("cpu", "torch", 512, "float32"))
        self.assertIsNone(r["peak_gpu_memory_bytes"])
        self.assertTrue(r["ok"])

    def test_no_torch_runs_python_matmul(self):
        r = smoke.build_report(None, {"HEADROOM_SMOKE_N": "16"}, "No module named 'torch'")
        self.assertEqual((r["torch"], r["torch_error"]), (None, "No module named 'torch'"))
        m = r["matmul"]
        self.assertEqual((m["device"], m["backend"], m["n"], m["dtype"]), ("cpu", "python", 16, "float64"))
        self.assertGreater(m["tflops"], 0)
        self.assertTrue(check(r, "matmul")["ok"])
        self.assertTrue(r["ok"])

    def test_bad_n_fails_the_matmul_check(self):
        r = smoke.build_report(None, {"HEADROOM_SMOKE_N": "abc"})
        self.assertIn("HEADROOM_SMOKE_N", r["matmul"]["error"])
        self.assertFalse(check(r, "matmul")["ok"])
        self.assertFalse(r["ok"])

    def test_torch_failures_are_reported_not_raised(self):
        torch = FakeTorch()
        torch.cuda.is_available = lambda: 1 / 0
        torch.matmul = lambda a, b: (_ for _ in ()).throw(RuntimeError("CUDA error: no kernel image"))
        r = smoke.build_report(torch, {})
        self.assertIn("ZeroDivisionError", check(r, "collect")["detail"])
        self.assertIn("no kernel image", check(r, "matmul")["detail"])
        self.assertFalse(r["ok"])
        json.loads(smoke.render(r))


class EvidenceTest(unittest.TestCase):
    def test_a_device_that_computes_wrong_fails_both_checks(self):
        r = smoke.build_report(FakeTorch(wrong_by=1), {})
        self.assertEqual((check(r, "matmul_check")["ok"], check(r, "conv")["ok"]), (False, False))
        self.assertIn("max error 1", check(r, "conv")["detail"])
        self.assertFalse(r["ok"])

    def test_impossible_cuda_builds_fail(self):
        r = smoke.build_report(FakeTorch(cuda_version="12.1"), {})
        self.assertIn("says CUDA 11.8 but reports CUDA 12.1", check(r, "cuda_build")["detail"])
        self.assertFalse(r["ok"])
        r = smoke.build_report(FakeTorch(), {"CUDA_VERSION": "12.1.0", "NV_CUDNN_VERSION": "8.9.6.50"})
        self.assertIn("the image for CUDA 12.1.0", check(r, "cuda_build")["detail"])
        r = smoke.build_report(FakeTorch(), {"CUDA_VERSION": "11.8.0", "NV_CUDNN_VERSION": "9.1.0.70"})
        self.assertIn("cuDNN is 8700, the image's 9.1.0.70", check(r, "cuda_build")["detail"])
        r = smoke.build_report(FakeTorch(), {"CUDA_VERSION": "11.8.0", "NV_CUDNN_VERSION": "8.9.6.50"})
        self.assertTrue(check(r, "cuda_build")["ok"] and r["ok"], r["checks"])
        self.assertEqual((r["image_cuda"], r["image_cudnn"]), ("11.8.0", "8.9.6.50"))

    def test_the_cuda_the_build_chose_is_what_torch_must_be(self):
        base = {"CUDA_VERSION": "11.8.0", "NV_CUDNN_VERSION": "8.9.6.50"}
        with tempfile.TemporaryDirectory() as d:
            info = os.path.join(d, "build.json")
            env = dict(base, HEADROOM_BUILD_INFO=info)
            # PyPI's torch 2.0.1 (no local tag, CUDA 11.7) in the 11.8 base, as the build chose.
            with open(info, "w") as f:
                f.write('{"torch_cuda": "11.7"}')
            pypi = FakeTorch(cuda_version="11.7")
            pypi.__version__ = "2.0.1"
            for torch in (pypi, FakeTorch(cuda=False, cuda_version="11.7")):
                torch.version.cuda = "11.7"
                r = smoke.build_report(torch, env)
                self.assertEqual(r["built_for_cuda"], "11.7")
                self.assertTrue(check(r, "cuda_build")["ok"], r["checks"])
                self.assertIn("as the build chose, which the image's CUDA 11.8.0 runs",
                              check(r, "cuda_build")["detail"])
            # Without the record, the same torch is measured against the base: it fails.
            r = smoke.build_report(pypi, base)
            self.assertIn("the image for CUDA 11.8.0", check(r, "cuda_build")["detail"])
            # The PyTorch index was asked for (cu118) but PyPI's cu117 came: the fallback fails.
            with open(info, "w") as f:
                f.write('{"torch_cuda": "11.8"}')
            r = smoke.build_report(pypi, env)
            self.assertIn("the build installed it for CUDA 11.8", check(r, "cuda_build")["detail"])
            self.assertFalse(r["ok"])
            # Still impossible whatever the build chose; and a newer CUDA than the base's.
            r = smoke.build_report(FakeTorch(cuda_version="12.1"), env)
            self.assertIn("says CUDA 11.8 but reports CUDA 12.1", check(r, "cuda_build")["detail"])
            with open(info, "w") as f:
                f.write('{"torch_cuda": "12.1"}')
            cu121 = FakeTorch(cuda_version="12.1")
            cu121.__version__ = "2.1.0+cu121"
            r = smoke.build_report(cu121, env)
            self.assertEqual(check(r, "cuda_build")["detail"],
                             "torch is built for CUDA 12.1, which the image's CUDA 11.8.0 cannot run")
            # A record that is not JSON is an error, not a silent None.
            with open(info, "w") as f:
                f.write("11.7")
            r = smoke.build_report(pypi, env)
            self.assertIn("build.json is not a JSON object", check(r, "collect")["detail"])
            self.assertFalse(r["ok"])

    def test_driver_version_is_read_from_the_kernel_module(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n")
        try:
            self.assertEqual(smoke.read_driver(f.name), "535.104.05")
        finally:
            os.unlink(f.name)
        self.assertIsNone(smoke.read_driver("/nonexistent/version"))


class EvaluateTest(unittest.TestCase):
    def test_require_cuda_fails_on_cpu(self):
        for torch in (FakeTorch(cuda=False), None):
            r = smoke.build_report(torch, {"HEADROOM_SMOKE_REQUIRE_CUDA": "1", "HEADROOM_SMOKE_N": "8"})
            self.assertFalse(check(r, "cuda_available")["ok"])
            self.assertFalse(r["ok"])
        r = smoke.build_report(FakeTorch(), {"HEADROOM_SMOKE_REQUIRE_CUDA": "1"})
        self.assertEqual(check(r, "cuda_available"), {"name": "cuda_available", "ok": True,
                                                      "detail": "1 device(s): NVIDIA H200"})

    def test_require_torch(self):
        r = smoke.build_report(None, {"HEADROOM_SMOKE_REQUIRE_TORCH": "1", "HEADROOM_SMOKE_N": "8"},
                               "No module named 'torch'")
        self.assertEqual(check(r, "torch")["detail"], "torch did not import: No module named 'torch'")
        self.assertFalse(r["ok"])
        self.assertTrue(smoke.build_report(FakeTorch(), {"HEADROOM_SMOKE_REQUIRE_TORCH": "yes"})["ok"])

    def test_invalid_flag_fails(self):
        r = smoke.build_report(FakeTorch(), {"HEADROOM_SMOKE_REQUIRE_CUDA": "maybe"})
        self.assertFalse(check(r, "cuda_available")["ok"])
        self.assertIn("not a boolean", check(r, "cuda_available")["detail"])

    def test_version_match_ignores_local_part(self):
        self.assertTrue(smoke.version_matches("2.0.1+cu118", "2.0.1"))
        self.assertTrue(smoke.version_matches("2.0.1+cu118", "2.0"))
        self.assertTrue(smoke.version_matches("2.0.1+cu118", "2.0.1+cu118"))
        self.assertFalse(smoke.version_matches("2.0.1+cu118", "2.0.1+cu117"))
        self.assertFalse(smoke.version_matches("2.0.10", "2.0.1"))
        self.assertFalse(smoke.version_matches("2.1.0", "2.0.1"))
        self.assertFalse(smoke.version_matches(None, "2.0.1"))
        r = smoke.build_report(FakeTorch(), {"HEADROOM_SMOKE_TORCH_VERSION": "2.0.1"})
        self.assertTrue(check(r, "torch_version")["ok"])
        r = smoke.build_report(FakeTorch(), {"HEADROOM_SMOKE_TORCH_VERSION": "2.1"})
        self.assertEqual(check(r, "torch_version"), {"name": "torch_version", "ok": False,
                                                     "detail": "want 2.1, have 2.0.1+cu118"})

    def test_min_tflops(self):
        report = smoke.empty_report()
        report["matmul"].update(n=64, seconds=0.5, tflops=0.5)
        for raw, ok in (("0.4", True), ("0.5", True), ("0.6", False), ("fast", False), ("inf", False)):
            c = check({"checks": smoke.evaluate(report, {"HEADROOM_SMOKE_MIN_TFLOPS": raw})}, "min_tflops")
            self.assertEqual(c["ok"], ok, raw)

    def test_matmul_check_needs_finite_positive_number(self):
        for rate, ok in ((0.1, True), (0, False), (None, False), (float("nan"), False), (float("inf"), False)):
            report = smoke.empty_report()
            report["matmul"].update(n=64, seconds=1.0, tflops=rate)
            self.assertEqual(check({"checks": smoke.evaluate(report, {})}, "matmul")["ok"], ok, rate)


class ModelTest(unittest.TestCase):
    def test_model_loads_and_runs(self):
        transformers, calls, model = fake_transformers()
        r = smoke.build_report(FakeTorch(), {"HEADROOM_SMOKE_MODEL": "org/tiny"}, transformers=transformers)
        self.assertEqual(calls["model"], ("org/tiny", {}))  # a name: the hub may be asked
        self.assertEqual((r["model"]["name"], r["model"]["device"], r["model"]["error"]), ("org/tiny", "cuda", None))
        self.assertIsNone(r["model_reason"])
        self.assertEqual(model.calls[0]["input_ids"].device, "cuda")
        self.assertTrue(check(r, "model")["ok"])

    def test_local_path_is_local_files_only_and_tokenizer_is_optional(self):
        transformers, calls, model = fake_transformers(tokenizer=False)
        with tempfile.TemporaryDirectory() as path, contextlib.redirect_stderr(io.StringIO()):
            r = smoke.build_report(FakeTorch(cuda=False), {"HEADROOM_SMOKE_MODEL": path},
                                   transformers=transformers)
        self.assertEqual(calls["model"], (path, {"local_files_only": True}))
        self.assertEqual(model.calls[0]["input_ids"].shape, (1, 4))
        self.assertTrue(r["ok"], r["checks"])

    def test_model_failure_fails_the_check(self):
        transformers = fake_transformers(fail_model=True)[0]
        r = smoke.build_report(FakeTorch(), {"HEADROOM_SMOKE_MODEL": "org/missing"}, transformers=transformers)
        self.assertEqual(check(r, "model")["detail"], "OSError: no such model: org/missing")
        self.assertFalse(r["ok"])
        r = smoke.build_report(None, {"HEADROOM_SMOKE_MODEL": "org/x", "HEADROOM_SMOKE_N": "8"})
        self.assertIn("torch is not importable", check(r, "model")["detail"])


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADROOM_SMOKE_") and k != "PORT"}
    env.update(extra)
    return env


class MainTest(unittest.TestCase):
    def run_smoke(self, **env):
        proc = subprocess.run([sys.executable, os.path.join(HERE, "smoke.py")], env=clean_env(**env),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        out = proc.stdout.decode()
        self.assertEqual(out.count("\n"), 1)
        self.assertTrue(out.startswith(smoke.MARKER), out)
        report = json.loads(out[len(smoke.MARKER):])  # exactly one JSON document, or this raises
        self.assertIsInstance(report, dict)
        self.assertEqual(set(report), set(smoke.empty_report()))
        return proc.returncode, report

    def test_passing_run_exits_0(self):
        code, report = self.run_smoke(HEADROOM_SMOKE_N="16")
        self.assertEqual((code, report["ok"]), (0, True))

    def test_failing_check_exits_1_with_json(self):
        code, report = self.run_smoke(HEADROOM_SMOKE_N="16", HEADROOM_SMOKE_MIN_TFLOPS="1e30")
        self.assertEqual((code, report["ok"], check(report, "min_tflops")["ok"]), (1, False, False))
        code, report = self.run_smoke(HEADROOM_SMOKE_N="abc")
        self.assertEqual((code, report["ok"]), (1, False))

    def test_unexpected_exception_still_prints_json(self):
        original = smoke.collect
        smoke.collect = lambda *a, **k: 1 / 0
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                code = smoke.main()
        finally:
            smoke.collect = original
        report = json.loads(out.getvalue()[len(smoke.MARKER):])
        self.assertEqual((code, report["ok"]), (1, False))
        self.assertIn("ZeroDivisionError", check(report, "collect")["detail"])


class FixtureTest(unittest.TestCase):
    def test_fixtures_match_current_shape(self):
        for name, report in (("gpu-fake-h200.json", gpu_fixture()), ("cpu-no-torch.json", cpu_fixture())):
            with open(os.path.join(FIXTURES, name)) as f:
                saved = json.load(f)
            fresh = json.loads(smoke.render(report))
            self.assertEqual(shape(saved), shape(fresh), "%s is stale: run %s --write-fixtures"
                             % (name, os.path.relpath(__file__)))
            self.assertTrue(saved["ok"], name)

    def test_gpu_fixture_content(self):
        with open(os.path.join(FIXTURES, "gpu-fake-h200.json")) as f:
            saved = json.load(f)
        self.assertEqual((saved["devices"], saved["cuda"], saved["cudnn"]), (["NVIDIA H200"], "11.8", 8700))
        self.assertEqual((saved["conv"]["device"], saved["matmul_check"]["max_error"]), ("cuda", 0))
        self.assertEqual(saved["matmul"]["device"], "cuda")
        self.assertIsInstance(saved["model"], dict)


def read(path):
    with open(path) as f:
        return f.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerTest(unittest.TestCase):
    server = os.path.join(HERE, "server.py")

    def start(self, **env):
        """Start server.py on a free port; return (process, port, its stderr log path)."""
        port = free_port()
        log = tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False)
        self.addCleanup(os.unlink, log.name)
        proc = subprocess.Popen([sys.executable, self.server], env=clean_env(PORT=str(port), **env),
                                stdout=subprocess.DEVNULL, stderr=log)
        log.close()
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        self.wait_for(lambda: self.listening(proc, port), "server listening on %d" % port)
        return proc, port, log.name

    def listening(self, proc, port):
        self.assertIsNone(proc.poll(), "server exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def wait_for(self, condition, what, seconds=60):
        deadline = time.time() + seconds
        while not condition():
            if time.time() > deadline:
                self.fail("timed out waiting for " + what)
            time.sleep(0.1)

    def get(self, port, path):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
                return r.status, r.headers["Content-Type"], json.loads(r.read().decode())
        except urllib.error.HTTPError as e:
            return e.code, e.headers["Content-Type"], json.loads(e.read().decode())

    def probe(self, port):
        return subprocess.run([sys.executable, self.server, "--probe"], env=clean_env(PORT=str(port)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30).returncode

    def test_health_404_probe_and_sigterm(self):
        proc, port, _ = self.start()
        status, ctype, body = self.get(port, "/health")
        self.assertEqual((status, ctype), (200, "application/json"))
        self.assertEqual(body["status"], "healthy")
        self.assertIsInstance(body["cuda"], bool)
        self.assertIs(body["model_loaded"], False)
        self.assertEqual(self.get(port, "/health?verbose=1")[0], 200)
        status, ctype, body = self.get(port, "/nope")
        self.assertEqual((status, ctype, body), (404, "application/json", {"error": "not found", "path": "/nope"}))
        self.assertEqual(self.probe(port), 0)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=10), 0)

    def test_probe_without_server_fails(self):
        self.assertNotEqual(self.probe(free_port()), 0)

    def test_model_that_does_not_load_leaves_server_healthy(self):
        proc, port, log = self.start(HEADROOM_SMOKE_MODEL="/nonexistent/model")
        self.wait_for(lambda: "did not load" in read(log), "the model loader to give up")
        body = self.get(port, "/health")[2]
        self.assertEqual((body["status"], body["model_loaded"]), ("healthy", False))
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=10), 0)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-fixtures"]:
        write_fixtures()
    else:
        unittest.main()
