"""scripts/ is a regular package only so that the build hook's ``scripts.bundle`` import
(pyproject.toml, ``[tool.hatch.build.hooks.jupyter-builder]``) resolves to this tree even when an
installed distribution ships a top-level ``scripts`` package (a namespace portion would lose)."""
