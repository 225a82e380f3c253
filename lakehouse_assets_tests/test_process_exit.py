"""A process that imported the project skips CPython's garbage collections at shutdown
(lakehouse_assets/process_exit.py): about a second of every CLI, run worker and sensor process."""

import subprocess
import sys


def test_the_project_freezes_tracked_objects_at_exit():
    # Registered before the import, so it runs after the project's handler (atexit is LIFO).
    probe = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count()))\n"
        "import lakehouse_assets\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    frozen = int(out.split()[-1])
    assert frozen > 10_000, out


def test_without_the_project_nothing_is_frozen():
    probe = "import atexit, gc\natexit.register(lambda: print('frozen', gc.get_freeze_count()))\nimport polars\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert int(out.split()[-1]) == 0, out
