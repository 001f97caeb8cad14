"""The GPU pin set as one requirements list: pyproject.toml's pins with requirements/gpu.txt's replacing them.

    python scripts/gpu_pins.py gpu   # what `make gpu` installs (Unsloth, CUDA torch, older trl/transformers)
    python scripts/gpu_pins.py cpu   # the same minus the `gpu-only` lines: what `make test-gpu-pins` installs
                                     # (torch stays at pyproject's CPU build)
    python scripts/gpu_pins.py cpu-ops DIR   # DIR/unsloth_zoo_cpu_ops.py from the pinned unsloth_zoo wheel
                                             # (see scripts/trl_cpu_fused_head.py)

Written here rather than as a pip constraints file because pyproject's exact pins (transformers==5.24.0)
cannot be loosened by a constraint; a package added to pyproject joins both lists by itself.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", NAME.match(requirement).group(1)).lower()


def project_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    return project["dependencies"] + project.get("optional-dependencies", {}).get("dev", [])


def gpu_overrides(path: Path = ROOT / "requirements" / "gpu.txt") -> list[tuple[str, bool]]:
    """(requirement, gpu_only) per line of the GPU pin file."""
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        requirement, _, comment = line.partition("#")
        if requirement.strip():
            if "==" not in requirement:
                raise ValueError(f"{path}:{number}: expected an exact pin (name==version), got {line!r}")
            out.append((requirement.strip(), comment.strip().startswith("gpu-only")))
    return out


def merged(kind: str) -> list[str]:
    """pyproject's requirements with the GPU pins replacing those of the same name, then the GPU-only
    additions (kind "gpu"); kind "cpu" leaves every gpu-only line out."""
    if kind not in ("gpu", "cpu"):
        raise ValueError(f"kind {kind!r}: expected gpu or cpu")
    overrides = {canonical(r): r for r, gpu_only in gpu_overrides() if kind == "gpu" or not gpu_only}
    base = project_requirements()
    names = {canonical(r) for r in base}
    return [overrides.get(canonical(r), r) for r in base] + [r for n, r in overrides.items() if n not in names]


def unsloth_cpu_ops(folder: Path) -> Path:
    """Unsloth's CPU twin of TRL's fused LM head, the file unsloth_zoo/cpu/ops.py of the pinned wheel (pip
    download, no dependencies; only this file is used), written to `folder`."""
    import subprocess
    import tempfile
    import zipfile

    pin = next(r for r, _ in gpu_overrides() if canonical(r) == "unsloth-zoo")
    with tempfile.TemporaryDirectory() as wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", wheels, pin], check=True)
        wheel = next(Path(wheels).glob("unsloth_zoo-*.whl"))
        target = Path(folder) / "unsloth_zoo_cpu_ops.py"
        target.write_bytes(zipfile.ZipFile(wheel).read("unsloth_zoo/cpu/ops.py"))
    return target


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "cpu-ops":
        print(unsloth_cpu_ops(Path(sys.argv[2])))
    else:
        print("\n".join(merged(sys.argv[1] if len(sys.argv) > 1 else "gpu")))
