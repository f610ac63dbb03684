#!/usr/bin/env python3
"""In-container smoke test for headroom's CUDA + PyTorch images.

Why it exists: an image that builds is not yet an image that works. This script runs inside the
freshly built image (see crates/docker/src/smoke.rs) and proves, in numbers, that Python, torch,
CUDA, cuDNN and the GPUs are usable: it times a matrix multiply and, optionally, loads a model and
runs one forward pass. Its result is ONE JSON object on the LAST line of stdout, after the marker
"HEADROOM-SMOKE-JSON " (diagnostics go to stderr); it exits 0 when every check passes, 1 when one
fails. The JSON is printed in every case, also when something raises: errors are reported in it,
never as a bare traceback. The marker is the channel no entrypoint can pollute: a base image's
entrypoint (NVIDIA's prints a banner, the license and a driver warning on stdout before it execs
the command) may write what it likes before it; the Rust side reads the last marked line.

The parts are pure so they can be tested without torch:
  collect(torch, env)   -> the facts (torch may be None: the pure-Python path still runs)
  evaluate(report, env) -> the checks, from the environment's policy
  main()                -> wires them, prints the JSON, returns the exit code

Environment:
  HEADROOM_SMOKE_N=N                 matmul size (default 2048 on GPU, 512 on CPU, 64 without torch)
  HEADROOM_SMOKE_MODEL=PATH|NAME     load this model with transformers and run one forward pass
  HEADROOM_SMOKE_REQUIRE_CUDA=1      fail unless torch.cuda.is_available()
  HEADROOM_SMOKE_REQUIRE_TORCH=1     fail unless torch imports
  HEADROOM_SMOKE_TORCH_VERSION=2.0.1 fail unless torch.__version__ matches (local part "+cu117" ignored)
  HEADROOM_SMOKE_MIN_TFLOPS=X        fail unless the matmul reaches X TFLOP/s
  CUDA_VERSION, NV_CUDNN_VERSION     the base's CUDA and cuDNN (set by NVIDIA's base): torch's cuDNN
                                     must match its major; torch's CUDA its major.minor, or, when
                                     the build says which CUDA it installed torch for, that one
                                     (and the same major, not newer than the base's)
  HEADROOM_BUILD_INFO=PATH           what the build chose (default: build.json next to this
                                     script, written by docker/Dockerfile): {"torch_cuda": "11.7"}
                                     for PyPI's torch, "11.8" for the PyTorch index's cu118

Evidence of work on the device (the Rust side judges it again): the driver, each GPU's name,
compute capability and memory, a small matmul of integers checked exactly against Python's
product, and a cuDNN convolution checked the same way, both on the device the run used.
"""

import contextlib
import importlib
import json
import math
import os
import platform
import random
import sys
import time
import traceback

GPU_N, CPU_N, PYTHON_N = 2048, 512, 64
GPU_ITERS, CPU_ITERS, PYTHON_ITERS = 10, 3, 3
TRUE, FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
NO_MODEL = "HEADROOM_SMOKE_MODEL is not set"
MARKER = "HEADROOM-SMOKE-JSON "
CHECK_N = 16  # small integers: every product and sum is exact in float16 and bfloat16


def describe(exc):
    """One line for an exception: the bare message for import errors, else 'Type: message'."""
    if isinstance(exc, ImportError) and str(exc):
        return str(exc)
    return "%s: %s" % (type(exc).__name__, exc)


def import_torch():
    """Return (torch, None) or (None, why it did not import)."""
    try:
        import torch
        return torch, None
    except Exception as exc:  # a broken install raises OSError etc., not only ImportError
        return None, describe(exc)


def parse_bool(env, name):
    """Return (value, error) for a 1/0 style flag; unset means False."""
    raw = env.get(name, "").strip().lower()
    if raw in TRUE or raw in FALSE:
        return raw in TRUE, None
    return False, "%s=%r is not a boolean (use 1 or 0)" % (name, env[name])


def parse_positive_int(env, name, default):
    raw = env.get(name, "").strip()
    if not raw:
        return default, None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        return None, "%s=%r is not a positive integer" % (name, raw)
    return value, None


def finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def empty_report():
    """Every key the JSON always has, with the values of 'nothing found'."""
    return {
        "python": platform.python_version(),
        "torch": None,
        "torch_error": None,
        "cuda": None,
        "cudnn": None,
        "cuda_available": False,
        "device_count": 0,
        "devices": [],
        "matmul": {"device": "cpu", "backend": "python", "n": None, "dtype": "float64",
                   "iterations": 0, "seconds": None, "tflops": None, "error": None},
        "peak_gpu_memory_bytes": None,
        "driver": None,
        "cuda_driver": None,
        "gpus": [],
        "image_cuda": None,
        "image_cudnn": None,
        "built_for_cuda": None,
        "matmul_check": {"device": None, "dtype": None, "n": CHECK_N, "max_error": None,
                         "error": None},
        "conv": {"device": None, "dtype": None, "cudnn": None, "max_error": None, "error": None},
        "model": "skipped",
        "model_reason": NO_MODEL,
        "imports": {},
        "errors": [],
        "checks": [],
        "ok": False,
    }


def _try(report, what, fn, default=None):
    """Call fn(); on an exception, note it in report["errors"] and return default."""
    try:
        return fn()
    except Exception as exc:
        report["errors"].append("%s: %s" % (what, describe(exc)))
        return default


def _sync(torch, device):
    if device == "cuda":
        torch.cuda.synchronize()


def _torch_facts(torch, report):
    version = _try(report, "torch.__version__", lambda: torch.__version__)
    report["torch"] = None if version is None else str(version)
    cuda = _try(report, "torch.version.cuda", lambda: torch.version.cuda)
    report["cuda"] = None if cuda is None else str(cuda)
    cudnn = _try(report, "torch.backends.cudnn.version()", lambda: torch.backends.cudnn.version())
    report["cudnn"] = int(cudnn) if finite(cudnn) else None
    available = _try(report, "torch.cuda.is_available()", lambda: torch.cuda.is_available(), False)
    report["cuda_available"] = bool(available)
    if available:
        count = _try(report, "torch.cuda.device_count()", lambda: torch.cuda.device_count(), 0)
        report["device_count"] = int(count)
        for i in range(int(count)):
            name = _try(report, "torch.cuda.get_device_name(%d)" % i,
                        lambda i=i: torch.cuda.get_device_name(i))
            report["devices"].append(None if name is None else str(name))
            props = _try(report, "torch.cuda.get_device_properties(%d)" % i,
                         lambda i=i: torch.cuda.get_device_properties(i))
            report["gpus"].append({
                "index": i, "name": None if name is None else str(name),
                "capability": None if props is None else "%d.%d" % (props.major, props.minor),
                "memory_bytes": None if props is None else int(props.total_memory)})
        report["driver"] = read_driver()
        report["cuda_driver"] = read_cuda_driver()


def read_driver(path="/proc/driver/nvidia/version"):
    """The kernel module's version ('535.104.05'), None without a driver."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    words = text.split()
    for i, word in enumerate(words):
        if word == "Module" and i + 1 < len(words):
            return words[i + 1]
    return None


def read_cuda_driver():
    """The CUDA version the driver supports ('12.2'), from libcuda; None without one."""
    try:
        import ctypes
        lib = ctypes.CDLL("libcuda.so.1")
        version = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
            return None
        return "%d.%d" % (version.value // 1000, version.value % 1000 // 10)
    except Exception:
        return None


def read_built_for_cuda(report, env):
    """The CUDA the build installed torch for, from its build.json; None when there is none
    (a user's image, a GPU machine outside any image). An unreadable file is an error."""
    path = env.get("HEADROOM_BUILD_INFO", "").strip() or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "build.json")
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        report["errors"].append("%s: %s" % (path, describe(exc)))
        return None
    try:
        value = json.loads(text).get("torch_cuda")
    except (ValueError, AttributeError) as exc:
        report["errors"].append("%s is not a JSON object: %s" % (path, describe(exc)))
        return None
    return None if value in (None, "") else str(value)


def check_matrices(n):
    """Two n×n matrices of small integers and their exact product, in plain Python."""
    a = [[(i * 7 + j * 3) % 5 - 2 for j in range(n)] for i in range(n)]
    b = [[(i * 5 + j * 11) % 5 - 2 for j in range(n)] for i in range(n)]
    product = [[sum(a[i][k] * b[k][j] for k in range(n)) for j in range(n)] for i in range(n)]
    return a, b, product


def conv_reference(image, kernel):
    """A valid 2-D cross-correlation (what conv2d computes) of lists, in plain Python."""
    kh, kw = len(kernel), len(kernel[0])
    return [[sum(image[i + u][j + v] * kernel[u][v] for u in range(kh) for v in range(kw))
             for j in range(len(image[0]) - kw + 1)] for i in range(len(image) - kh + 1)]


def max_error(got, want):
    return max(abs(float(g) - w) for gr, wr in zip(got, want) for g, w in zip(gr, wr))


def _checked_work(torch, device, dtype, report):
    """A matmul and a convolution (cuDNN's on a GPU) of small integers on `device`, each
    compared with Python's exact result: the device did the work, and did it right."""
    m, c = report["matmul_check"], report["conv"]
    m.update(device=device, dtype=dtype)
    c.update(device=device, dtype=dtype)
    kind = getattr(torch, dtype)
    try:
        a, b, want = check_matrices(CHECK_N)
        ta = torch.tensor(a, device=device, dtype=kind)
        tb = torch.tensor(b, device=device, dtype=kind)
        got = torch.matmul(ta, tb)
        _sync(torch, device)
        m["max_error"] = max_error(got.tolist(), want)
    except Exception as exc:
        m["error"] = describe(exc)
    try:
        image = [[(i * 3 + j) % 7 - 3 for j in range(8)] for i in range(8)]
        kernel = [[1, 0, -1], [2, 1, 0], [0, -1, 1]]
        c["cudnn"] = bool(torch.backends.cudnn.is_available()) if device == "cuda" else False
        ti = torch.tensor([[image]], device=device, dtype=kind)
        tk = torch.tensor([[kernel]], device=device, dtype=kind)
        got = torch.nn.functional.conv2d(ti, tk)
        _sync(torch, device)
        c["max_error"] = max_error(got.tolist()[0][0], conv_reference(image, kernel))
    except Exception as exc:
        c["error"] = describe(exc)


def tflops(n, iterations, seconds):
    """2·n³ floating-point operations per multiply; None when the time is unusable."""
    if not finite(seconds) or seconds <= 0:
        return None
    value = 2.0 * n ** 3 * iterations / seconds / 1e12
    return float("%.4g" % value) if math.isfinite(value) else None


def _torch_matmul(torch, device, n, dtype, iterations):
    a = torch.randn(n, n, device=device, dtype=getattr(torch, dtype))
    b = torch.randn(n, n, device=device, dtype=getattr(torch, dtype))
    torch.matmul(a, b)  # warm-up: kernel selection, lazy CUDA init
    _sync(torch, device)
    start = time.perf_counter()
    for _ in range(iterations):
        torch.matmul(a, b)
    _sync(torch, device)
    return time.perf_counter() - start


def _python_matmul(n, iterations):
    rng = random.Random(0)
    a = [[rng.random() for _ in range(n)] for _ in range(n)]
    columns = list(zip(*[[rng.random() for _ in range(n)] for _ in range(n)]))

    def multiply():
        return [[sum(x * y for x, y in zip(row, col)) for col in columns] for row in a]

    multiply()  # warm-up, as on the torch path
    start = time.perf_counter()
    for _ in range(iterations):
        multiply()
    return time.perf_counter() - start


def _matmul(torch, env, report):
    m = report["matmul"]
    if torch is None:
        device, dtype, n, iterations = "cpu", "float64", PYTHON_N, PYTHON_ITERS
    elif report["cuda_available"]:
        try:
            bf16 = bool(torch.cuda.is_bf16_supported())
        except Exception:  # absent on old torch
            bf16 = False
        device, dtype, n, iterations = "cuda", "bfloat16" if bf16 else "float16", GPU_N, GPU_ITERS
    else:
        device, dtype, n, iterations = "cpu", "float32", CPU_N, CPU_ITERS
    n, error = parse_positive_int(env, "HEADROOM_SMOKE_N", n)
    m.update(device=device, backend="python" if torch is None else "torch", n=n, dtype=dtype,
             iterations=iterations, error=error)
    if torch is not None:
        _checked_work(torch, device, dtype, report)
    if error:
        return
    try:
        if torch is None:
            seconds = _python_matmul(n, iterations)
        else:
            if device == "cuda" and hasattr(torch.cuda, "reset_peak_memory_stats"):
                torch.cuda.reset_peak_memory_stats()
            seconds = _torch_matmul(torch, device, n, dtype, iterations)
        m["seconds"] = round(seconds, 6) if finite(seconds) else None
        m["tflops"] = tflops(n, iterations, seconds)
    except Exception as exc:
        m["error"] = describe(exc)
    if device == "cuda":
        peak = _try(report, "torch.cuda.max_memory_allocated()",
                    lambda: torch.cuda.max_memory_allocated())
        report["peak_gpu_memory_bytes"] = int(peak) if finite(peak) else None


class LoadedModel(object):
    def __init__(self, model, tokenizer, device, load_seconds):
        self.model, self.tokenizer = model, tokenizer
        self.device, self.load_seconds = device, load_seconds


def pick_device(torch):
    try:
        return "cuda" if torch is not None and torch.cuda.is_available() else "cpu"
    except Exception:
        return "cpu"


def load_model(name, torch, transformers=None):
    """Load `name` (a local path: local_files_only; else a hub name) on the best device."""
    if torch is None:
        raise RuntimeError("torch is not importable, so no model can be loaded")
    if transformers is None:
        import transformers
    device = pick_device(torch)
    kwargs = {"local_files_only": True} if os.path.exists(name) else {}
    start = time.perf_counter()
    model = transformers.AutoModel.from_pretrained(name, **kwargs).to(device)
    model.eval()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(name, **kwargs)
    except Exception as exc:
        print("smoke: no tokenizer for %s (%s); using fixed token ids" % (name, describe(exc)),
              file=sys.stderr)
        tokenizer = None
    _sync(torch, device)
    return LoadedModel(model, tokenizer, device, time.perf_counter() - start)


def run_inference(loaded, torch):
    """One forward pass on a tiny input; returns its seconds."""
    with torch.no_grad():
        if loaded.tokenizer is not None:
            batch = loaded.tokenizer("headroom smoke test", return_tensors="pt")
            inputs = {k: v.to(loaded.device) for k, v in batch.items()}
        else:
            inputs = {"input_ids": torch.tensor([[1, 2, 3, 4]], device=loaded.device)}
        _sync(torch, loaded.device)
        start = time.perf_counter()
        loaded.model(**inputs)
        _sync(torch, loaded.device)
        return time.perf_counter() - start


def _model(torch, env, report, transformers):
    name = env.get("HEADROOM_SMOKE_MODEL", "").strip()
    if not name:
        return
    info = {"name": name, "device": pick_device(torch), "load_seconds": None,
            "inference_seconds": None, "error": None}
    report["model"], report["model_reason"] = info, None
    try:
        loaded = load_model(name, torch, transformers)
        info["device"], info["load_seconds"] = loaded.device, round(loaded.load_seconds, 6)
        info["inference_seconds"] = round(run_inference(loaded, torch), 6)
    except Exception as exc:
        info["error"] = describe(exc)


def collect(torch, env=None, torch_error=None, transformers=None):
    """The facts: versions, devices, a timed matmul, the optional model. Never raises for
    torch's failures (they land in report["errors"], matmul.error or model.error)."""
    env = os.environ if env is None else env
    report = empty_report()
    report["image_cuda"] = env.get("CUDA_VERSION") or None
    report["image_cudnn"] = env.get("NV_CUDNN_VERSION") or None
    report["built_for_cuda"] = read_built_for_cuda(report, env)
    if torch is None:
        report["torch_error"] = torch_error or "torch is not importable"
    else:
        _torch_facts(torch, report)
    _matmul(torch, env, report)
    _model(torch, env, report, transformers)
    _imports(env, report)
    return report


def _imports(env, report):
    """HEADROOM_SMOKE_IMPORTS=transformers,diffusers: each must import (a stack whose pins
    drifted apart fails here, not in a user's first job). Records version or error."""
    for name in [n.strip() for n in env.get("HEADROOM_SMOKE_IMPORTS", "").split(",") if n.strip()]:
        try:
            module = importlib.import_module(name)
            report["imports"][name] = {"version": str(getattr(module, "__version__", "")), "error": None}
        except BaseException as exc:  # noqa: BLE001 - any failure to import is the finding
            report["imports"][name] = {"version": None, "error": describe(exc)}


def version_matches(have, want):
    """'2.0.1' matches '2.0.1+cu117' and '2.0' matches '2.0.1', but '2.0.1' not '2.0.10'.
    A wanted local part ('2.0.1+cu117') must match exactly."""
    if not have:
        return False
    if "+" in want:
        return have == want
    wanted = want.split(".")
    return have.split("+")[0].split(".")[:len(wanted)] == wanted


def major_minor(version):
    return ".".join(str(version).split(".")[:2])


def cudnn_major(version):
    """torch's cuDNN number: 8902 is 8.9.2, 90100 is 9.1.0."""
    return version // 10000 if version >= 10000 else version // 1000


def _cuda_parts(version):
    """`11.8.0` as (11, 8); None when it is not two numbers (as the Rust side reads it)."""
    try:
        parts = tuple(int(p) for p in str(version).split(".")[:2])
    except ValueError:
        return None
    return parts if len(parts) == 2 else None


def cuda_build_problems(torch_version, cuda, image_cuda, cudnn, image_cudnn, built_for=None):
    """What is inconsistent between torch's CUDA, its wheel's tag, what the build installed it
    for and the image's CUDA. With `built_for` (the build chose PyPI's cu117 torch or the
    PyTorch index's cu118), torch must be that build, and the base must be able to run it: the
    same major, the base's minor not older than torch's (the base's driver requirement covers
    older minors). Without it, torch's CUDA must be the image's."""
    problems = []
    local = (torch_version or "").partition("+")[2]
    if local.startswith("cu") and local[2:].isdigit():
        tagged = "%s.%s" % (local[2:-1], local[-1])
        if major_minor(cuda) != tagged:
            problems.append("torch %s says CUDA %s but reports CUDA %s" % (torch_version, tagged, cuda))
    if built_for:
        if major_minor(cuda) != major_minor(built_for):
            problems.append("torch is built for CUDA %s, the build installed it for CUDA %s"
                            % (cuda, built_for))
        have, base = _cuda_parts(cuda), _cuda_parts(image_cuda)
        if image_cuda and (have is None or base is None or have[0] != base[0] or have > base):
            problems.append("torch is built for CUDA %s, which the image's CUDA %s cannot run"
                            % (cuda, image_cuda))
    elif image_cuda and major_minor(cuda) != major_minor(image_cuda):
        problems.append("torch is built for CUDA %s, the image for CUDA %s" % (cuda, image_cuda))
    if image_cudnn and finite(cudnn) and str(cudnn_major(int(cudnn))) != str(image_cudnn).split(".")[0]:
        problems.append("torch's cuDNN is %s, the image's %s" % (cudnn, image_cudnn))
    return problems


def evaluate(report, env):
    """The checks the environment asks for, plus the matmul check that always runs."""
    checks = []

    def add(name, ok, detail):
        checks.append({"name": name, "ok": bool(ok), "detail": detail})

    torch_version = report.get("torch")
    if report.get("errors"):
        add("collect", False, "; ".join(report["errors"]))
    require_torch, error = parse_bool(env, "HEADROOM_SMOKE_REQUIRE_TORCH")
    if error or require_torch:
        add("torch", torch_version is not None and not error, error or (
            "torch %s" % torch_version if torch_version else
            "torch did not import: %s" % report.get("torch_error")))
    require_cuda, error = parse_bool(env, "HEADROOM_SMOKE_REQUIRE_CUDA")
    if error or require_cuda:
        available = bool(report.get("cuda_available"))
        add("cuda_available", available and not error, error or (
            "%d device(s): %s" % (report.get("device_count", 0), ", ".join(map(str, report.get("devices", []))))
            if available else "torch.cuda.is_available() is false" if torch_version
            else "torch is not importable"))
    want = env.get("HEADROOM_SMOKE_TORCH_VERSION", "").strip()
    if want:
        add("torch_version", version_matches(torch_version, want),
            "want %s, have %s" % (want, torch_version or "no torch"))
    m = report.get("matmul") or {}
    rate = m.get("tflops")
    ran = m.get("error") is None and finite(rate) and rate > 0
    add("matmul", ran, "%s %dx%d %s on %s: %.4g TFLOP/s in %.4f s" % (
        m.get("backend"), m.get("n"), m.get("n"), m.get("dtype"), m.get("device"), rate,
        m.get("seconds")) if ran else "no finite positive TFLOP/s: %s" % (m.get("error") or rate))
    raw = env.get("HEADROOM_SMOKE_MIN_TFLOPS", "").strip()
    if raw:
        try:
            minimum = float(raw)
        except ValueError:
            minimum = float("nan")
        if not math.isfinite(minimum):
            add("min_tflops", False, "HEADROOM_SMOKE_MIN_TFLOPS=%r is not a number" % raw)
        else:
            add("min_tflops", ran and rate >= minimum,
                "want >= %g TFLOP/s, have %s" % (minimum, rate if ran else "none"))
    if torch_version is not None:
        for key, what in (("matmul_check", "matmul of integers"), ("conv", "convolution")):
            w = report.get(key) or {}
            err = w.get("max_error")
            ok = w.get("error") is None and finite(err) and err == 0
            add(key, ok, "%s %dx%d %s on %s: exact%s" % (
                what, CHECK_N, CHECK_N, w.get("dtype"), w.get("device"),
                " (cuDNN)" if w.get("cudnn") else "") if ok else
                "%s on %s: %s" % (what, w.get("device"), w.get("error") or "max error %s" % err))
    cuda = report.get("cuda")
    if cuda:
        built_for, image_cuda = report.get("built_for_cuda"), report.get("image_cuda")
        problems = cuda_build_problems(torch_version, cuda, image_cuda, report.get("cudnn"),
                                       report.get("image_cudnn"), built_for)
        add("cuda_build", not problems, "; ".join(problems) or "torch %s built for CUDA %s%s%s" % (
            torch_version, cuda, ", as the build chose" if built_for else "",
            (", which the image's CUDA %s runs" if built_for else ", as the image (CUDA %s)")
            % image_cuda if image_cuda else ""))
    imports = report.get("imports") or {}
    if imports:
        failed = ["%s: %s" % (k, v.get("error")) for k, v in sorted(imports.items()) if v.get("error")]
        add("imports", not failed, "; ".join(failed) or ", ".join(
            "%s %s" % (k, v.get("version")) for k, v in sorted(imports.items())))
    model = report.get("model")
    if isinstance(model, dict):
        add("model", model.get("error") is None, model.get("error") or
            "%s on %s: load %.3f s, inference %.3f s" % (model.get("name"), model.get("device"),
                                                         model.get("load_seconds"),
                                                         model.get("inference_seconds")))
    return checks


def build_report(torch, env, torch_error=None, transformers=None):
    report = collect(torch, env, torch_error, transformers)
    report["checks"] = evaluate(report, env)
    report["ok"] = all(check["ok"] for check in report["checks"])
    return report


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN/Infinity are not JSON
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def render(report, indent=None):
    return json.dumps(_json_safe(report), indent=indent, allow_nan=False)


@contextlib.contextmanager
def stdout_to_stderr():
    """Keep stdout for the JSON alone: Python prints and C-level writes (CUDA, libraries) go
    to stderr while this is active."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def main():
    env = dict(os.environ)
    try:
        with stdout_to_stderr():
            torch, torch_error = import_torch()
            report = build_report(torch, env, torch_error)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        report = empty_report()
        report["errors"].append("smoke: " + describe(exc))
        report["checks"] = [{"name": "collect", "ok": False, "detail": report["errors"][0]}]
        report["ok"] = False
    sys.stdout.write(MARKER + render(report) + "\n")
    sys.stdout.flush()
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
