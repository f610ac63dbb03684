#!/usr/bin/env python3
"""Health endpoint of headroom's CUDA + PyTorch image (its default command).

Why it exists: the image is also checked as it runs in production, started with its own
command and watched through Docker's HEALTHCHECK (crates/docker/src/smoke.rs). This is the
smallest such service, standard library only:

  GET /health -> 200 {"status": "healthy", "cuda": <bool>, "ready": <bool>, "model_loaded": <bool>}
  anything else -> 404 {"error": "not found", "path": "..."}

It listens on 0.0.0.0:$PORT (default 8000) at once; `cuda` is torch.cuda.is_available(),
computed once in the background after the port opened (false without torch), and `ready` turns
true when that is done. When HEADROOM_SMOKE_MODEL is set, the model is loaded
at start with smoke.py's loader, in a background thread so the port opens at once;
`model_loaded` turns true when that succeeds and stays false if it fails (logged to stderr).
SIGTERM and SIGINT stop it promptly with exit status 0.

`server.py --probe` GETs http://127.0.0.1:$PORT/health (3 s timeout) and exits 0 only if the
status is "healthy": the Dockerfile's HEALTHCHECK.
"""

import argparse
import json
import os
import signal
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smoke  # noqa: E402  (lives next to this file, in the image too)


def log(message):
    sys.stderr.write("server: %s\n" % message)
    sys.stderr.flush()


def port_from_env():
    raw = os.environ.get("PORT", "8000").strip() or "8000"
    port = int(raw) if raw.isdigit() else -1
    if not 0 < port < 65536:
        raise SystemExit("server: PORT=%r is not a port number" % raw)
    return port


class State(object):
    cuda = False
    ready = False  # torch imported and CUDA initialised (or found absent)
    model_loaded = False


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        server_version = "headroom-health"

        def do_GET(self):
            path = urlsplit(self.path).path
            if path == "/health":
                self.send_json(200, {"status": "healthy", "cuda": state.cuda,
                                     "ready": state.ready, "model_loaded": state.model_loaded})
            else:
                self.send_json(404, {"error": "not found", "path": path})

        def send_json(self, code, body):
            data = json.dumps(body).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *args):  # one quiet line per request, on stderr
            log("%s %s" % (self.address_string(), fmt % args))

    return Handler


def load_in_background(name, torch, state):
    def load():
        try:
            loaded = smoke.load_model(name, torch)
            state.model_loaded = True
            log("model %s loaded on %s in %.1f s" % (name, loaded.device, loaded.load_seconds))
        except Exception as exc:
            log("model %s did not load: %s" % (name, smoke.describe(exc)))

    thread = threading.Thread(target=load, name="model-loader", daemon=True)
    thread.start()
    return thread


def init_in_background(name, state):
    torch, error = smoke.import_torch()
    if error:
        log("no torch (%s): cuda is false" % error)
    state.cuda = smoke.pick_device(torch) == "cuda"
    state.ready = True
    log("cuda: %s" % str(state.cuda).lower())
    if name:
        load_in_background(name, torch, state)


class Stop(Exception):
    pass


def _stop(signum, frame):
    raise Stop()


def serve(port):
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        state = State()
        # The port opens first: importing torch and initialising CUDA can take longer than
        # the HEALTHCHECK's start period on a big multi-GPU host. `cuda` is false until then.
        httpd = ThreadingHTTPServer(("0.0.0.0", port), make_handler(state))
        httpd.daemon_threads = True
        name = os.environ.get("HEADROOM_SMOKE_MODEL", "").strip()
        threading.Thread(target=init_in_background, args=(name, state), name="cuda-init",
                         daemon=True).start()
        log("listening on 0.0.0.0:%d" % port)
        try:
            httpd.serve_forever()
        finally:
            httpd.server_close()
    except Stop:
        log("stopping")
    sys.stdout.flush()
    sys.stderr.flush()
    # Exit at once: neither wait for (nor finalize under) a half-loaded model, nor for the
    # threads a library started while loading one (torch, tokenizers), which would hold a
    # plain interpreter exit past the engine's stop timeout.
    os._exit(0)


def probe(port, timeout=3.0):
    url = "http://127.0.0.1:%d/health" % port
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(url, timeout=timeout) as response:
            body = json.loads(response.read().decode("utf-8"))
    except Exception as exc:
        log("probe %s: %s" % (url, smoke.describe(exc)))
        return 1
    print(json.dumps(body))
    healthy = isinstance(body, dict) and body.get("status") == "healthy"
    return 0 if healthy else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description="headroom's health endpoint")
    parser.add_argument("--probe", action="store_true",
                        help="GET /health on 127.0.0.1:$PORT; exit 0 only if healthy")
    args = parser.parse_args(argv)
    port = port_from_env()
    return probe(port) if args.probe else serve(port)


if __name__ == "__main__":
    sys.exit(main())
