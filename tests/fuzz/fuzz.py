"""Long-running coverage-guided fuzzing of one target with atheris (libFuzzer for Python).

    .venv/bin/pip install atheris
    .venv/bin/python tests/fuzz/fuzz.py TARGET [libFuzzer options]
    .venv/bin/python tests/fuzz/fuzz.py --list

Defaults: ``-rss_limit_mb=500 -timeout=2 -max_len=<target's size × 4>`` (the bounds the parsers
promise: an input over 2 s or a process over 500 MB is a finding) and a seed corpus written to
``/tmp/upscope-fuzz/<target>/seeds`` from the real captures in ``../shared/pcaps`` (when present)
and the repository's examples. Any exception other than ``UpscopeError`` stops the run and leaves
``crash-*`` with the input. ``-runs=N`` bounds a run; without it, it runs until interrupted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.fuzz.seeds import write_seeds  # noqa: E402
from tests.fuzz.targets import BY_NAME, TARGETS, runner  # noqa: E402


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print(__doc__.strip() + "\n\ntargets: " + ", ".join(t.name for t in TARGETS))
        return 0
    target = BY_NAME.get(argv[0])
    if target is None:
        print(f"unknown target {argv[0]!r}; known: {', '.join(BY_NAME)}", file=sys.stderr)
        return 2
    import atheris

    work = Path(os.environ.get("UPSCOPE_FUZZ_DIR", "/tmp/upscope-fuzz")) / target.name
    corpus, seeds = work / "corpus", work / "seeds"
    corpus.mkdir(parents=True, exist_ok=True)
    write_seeds(target.name, seeds)
    run = runner(target)  # imports the target's modules: instrument them below
    if os.environ.get("UPSCOPE_FUZZ_INSTRUMENT", "1") != "0":  # 0: blind mutation, e.g. to tell a
        atheris.instrument_all()  # leak of the instrumentation from one of the target
    options = [a for a in argv[1:]]
    defaults = {"-rss_limit_mb": "500", "-timeout": "2", "-max_len": str(target.max_size * 4),
                "-artifact_prefix": f"{work}/"}
    for key, value in defaults.items():
        if not any(a.startswith(key + "=") for a in options):
            options.append(f"{key}={value}")
    atheris.Setup([sys.argv[0], *options, str(corpus), str(seeds)], run)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
