# headroom's fake nvidia-container-runtime-hook (lab/src/sandbox/fake_gpu.rs). dockerd runs
# it as the OCI prestart hook of a container with a GPU request (`nvidia-container-runtime-hook
# prestart`, the container's state on stdin), as it runs NVIDIA's. It records what it was
# asked, then passes or fails as the real hook does, by the mode in ../mode:
#   ok          the GPU is "exposed" (recorded)
#   no-driver   nvidia-container-cli: initialization error (libnvidia-ml.so.1 missing)
#   old-driver  nvidia-container-cli: requirement error (NVIDIA_REQUIRE_CUDA's cuda>=)
#   no-device   nvidia-container-cli: device error (unknown device)
# NVIDIA_VISIBLE_DEVICES unset, empty, void or none: nothing to do, as the real hook.
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    state = json.load(sys.stdin)
    with open(os.path.join(state["bundle"], "config.json")) as f:
        config = json.load(f)
    env = dict(e.split("=", 1) for e in config.get("process", {}).get("env", []) if "=" in e)
    visible = env.get("NVIDIA_VISIBLE_DEVICES")
    with open(os.path.join(ROOT, "mode")) as f:
        mode = f.read().strip()
    wanted = visible not in (None, "", "void", "none")
    require = env.get("NVIDIA_REQUIRE_CUDA", "")
    error = None
    if wanted and mode == "no-driver":
        error = ("nvidia-container-cli: initialization error: load library failed: "
                 "libnvidia-ml.so.1: cannot open shared object file: no such file or directory")
    elif wanted and mode == "old-driver" and "cuda>=" in require:
        condition = [w for w in require.split() if w.startswith("cuda>=")][0]
        error = ("nvidia-container-cli: requirement error: unsatisfied condition: %s, please "
                 "update your driver to a newer version, or use an earlier cuda container" % condition)
    elif wanted and mode == "no-device":
        error = "nvidia-container-cli: device error: %s: unknown device" % visible
    hooks = (config.get("hooks") or {}).get("prestart") or []
    record = {"who": "hook", "id": state.get("id"), "args": sys.argv[1:], "visible": visible,
              "capabilities": env.get("NVIDIA_DRIVER_CAPABILITIES"), "mode": mode,
              "nvidia_hooks": sum(1 for h in hooks if "nvidia" in h.get("path", "")),
              "exposed": wanted and error is None}
    with open(os.path.join(ROOT, "records.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")
    if error:
        sys.stderr.write(error + "\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
