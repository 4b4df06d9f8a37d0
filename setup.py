"""Build step pyproject.toml cannot express: the wheel carries the top-level templates/ and static/.

They stay at the repository's top level (the layout users asked for) and go into the built
package as livetrain/templates and livetrain/static, where the installed app looks for them.
Package data cannot name folders outside the package, and mapping them in as sub-packages
would mean listing every package by hand; so build_py copies them.
"""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

ASSET_FOLDERS = ("templates", "static")


class BuildPyWithAssets(build_py):
    """build_py that also copies templates/ and static/ into the built livetrain package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install serves them from the checkout, in place
            return
        for name in ASSET_FOLDERS:
            target = os.path.join(self.build_lib, "livetrain", name)
            # setuptools reuses build/ between builds: a file deleted since must not reach the next wheel
            shutil.rmtree(target, ignore_errors=True)
            self.copy_tree(name, target)


setup(cmdclass={"build_py": BuildPyWithAssets})
