# headroom's fake nvidia runtime (lab/src/sandbox/fake_gpu.rs): a wrapper around runc, as
# nvidia-container-runtime is. It records each call; on `create`, when the container's
# NVIDIA_VISIBLE_DEVICES asks for GPUs (set, not void/none) and no NVIDIA hook is there yet,
# it adds the prestart hook to the bundle's config.json (as the real one does in its legacy
# mode), then execs runc with the same arguments.
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOOK = os.path.join(ROOT, "bin", "nvidia-container-runtime-hook")
RUNC = open(os.path.join(ROOT, "runc-path")).read().strip()


def main(argv):
    record = {"who": "runtime", "command": next((a for a in argv if not a.startswith("-")
                                                  and a in ("create", "start", "delete", "kill",
                                                            "state", "run", "exec")), None)}
    if record["command"] == "create" and "--bundle" in argv:
        bundle = argv[argv.index("--bundle") + 1]
        path = os.path.join(bundle, "config.json")
        with open(path) as f:
            config = json.load(f)
        env = dict(e.split("=", 1) for e in config.get("process", {}).get("env", []) if "=" in e)
        visible = env.get("NVIDIA_VISIBLE_DEVICES")
        hooks = config.setdefault("hooks", {}).setdefault("prestart", [])
        present = any("nvidia" in h.get("path", "") for h in hooks)
        added = visible not in (None, "", "void", "none") and not present
        if added:
            hooks.append({"path": HOOK, "args": ["nvidia-container-runtime-hook", "prestart"]})
            with open(path, "w") as f:
                json.dump(config, f)
        record.update(visible=visible, hook_added=added, hook_from_engine=present)
        with open(os.path.join(ROOT, "records.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
    os.execv(RUNC, [RUNC] + argv)


if __name__ == "__main__":
    main(sys.argv[1:])
