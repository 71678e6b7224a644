"""Start-up: wall time of the commands that must not import TensorFlow, vs `import tensorflow`.

python benchmarks/startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse

import common

COMMANDS = {
    "dlrun --help": ["-m", "dlrun", "--help"],
    "dlrun config validate": ["-m", "dlrun", "config", "validate", "configs/quickstart.yaml"],
    "dlrun list": ["-m", "dlrun", "list"],
    "dlrun tr<TAB> (bash completion)": ["-m", "dlrun"],
    "python -c 'import tensorflow'": ["-c", "import tensorflow"],
}
ENV = {"dlrun tr<TAB> (bash completion)": {"_DLRUN_COMPLETE": "complete_bash", "COMP_WORDS": "dlrun tr", "COMP_CWORD": "1"}}
PROBE = (
    "import sys, runpy; sys.argv = ['dlrun', *sys.argv[1:]]\n"
    "try:\n    runpy.run_module('dlrun', run_name='__main__')\nexcept SystemExit:\n    pass\n"
    "print('TF_IMPORTED' if 'tensorflow' in sys.modules else 'NO_TF', file=sys.stderr)\n"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    options = parser.parse_args()
    results = {}
    for label, args in COMMANDS.items():
        env = {"TF_CPP_MIN_LOG_LEVEL": "3", **ENV.get(label, {})}
        times = [common.run([common.PYTHON, *args], env=env)[0] for _ in range(options.repeats)]
        results[label] = common.summary(times)
        if args[:2] == ["-m", "dlrun"]:
            _, probe = common.run([common.PYTHON, "-c", PROBE, *args[2:]], env=env)
            results[label]["imports_tensorflow"] = "TF_IMPORTED" in probe.stderr
        print(
            f"{label:32s} median {results[label]['median']:.3f}s (min {results[label]['min']:.3f}, "
            f"max {results[label]['max']:.3f})"
            + (f", imports TensorFlow: {results[label]['imports_tensorflow']}" if "imports_tensorflow" in results[label] else "")
        )
    print(f"saved {common.save('startup', results)}")


if __name__ == "__main__":
    main()
