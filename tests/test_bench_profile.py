"""The benchmark's profile names frames by their path inside the project or library, wherever
the project was cloned: no absolute path of the machine that ran it reaches the report."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import bench
from bench.profile import _frame_name

PROJECT = Path(bench.__file__).resolve().parent.parent


def test_a_project_frame_is_named_relative_to_the_clone() -> None:
    frame = f"patch ({PROJECT}/scim_server/core/provisioning.py:298)"
    assert _frame_name(frame) == "patch (scim_server/core/provisioning.py)"


def test_library_and_standard_library_frames_lose_their_install_prefix() -> None:
    library = f"verify ({sysconfig.get_paths()['purelib']}/signxml/verifier.py:40)"
    standard = f"run ({sysconfig.get_paths()['stdlib']}/asyncio/runners.py:118)"
    assert _frame_name(library) == "verify (signxml/verifier.py)"
    assert _frame_name(standard) == "run (asyncio/runners.py)"
