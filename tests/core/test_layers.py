"""The layers: the core is torch-free, the top level loads the rest lazily, imports only point down."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import learning_diagrams as ld


def run_without(modules: list[str], code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter in which importing any of ``modules`` fails."""
    blocked = "".join(f"sys.modules[{m!r}] = None\n" for m in modules)  # makes `import m` raise ImportError
    script = f"import sys\n{blocked}{textwrap.dedent(code)}"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_the_core_works_with_torch_numpy_and_jax_unimportable() -> None:
    result = run_without(
        ["torch", "numpy", "jax"],
        """
        import learning_diagrams.core as core
        from learning_diagrams.core import Diagram, losses
        d = (Diagram().space("N", data=[1.0]).space("X").space("Y", loss=losses.mse)
             .map("x", "N", "X", abs).map("f", "X", "Y", abs).map("y", "N", "Y", abs).relate("x·f", "y"))
        print([pair.name for pair in d.compiled_pairs()], losses.by_name("kl_div(T=2.0)"))
        import learning_diagrams.structure as structure
        print(structure.glue(d, d, along=Diagram().space("N")).apex.graph.vertices)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "['x·f ≤ y'] KLDivergence(temperature=2.0)",
        "('N', 'X_0', 'Y_0', 'X_1', 'Y_1')",
    ]


def test_importing_the_package_imports_no_back_end() -> None:
    result = run_without(
        [],
        """
        import sys
        import learning_diagrams as ld
        d = ld.Diagram().space("N", data=[0]).space("Y", loss=ld.losses.l1)
        d.map("f", "N", "Y", float).map("g", "N", "Y", abs).parallel_pairs()
        print(sorted(m for m in ("torch", "numpy", "jax", "lark", "graphviz", "safetensors") if m in sys.modules))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_compiling_without_torch_says_what_is_missing() -> None:
    result = run_without(
        ["torch"],
        """
        import learning_diagrams as ld
        d = ld.Diagram().space("N", data=[0]).space("Y", loss=ld.losses.l1)
        d.map("f", "N", "Y", float).map("g", "N", "Y", abs)
        try:
            d.compile()
        except ImportError as err:
            print(type(err).__name__, err.name)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ModuleNotFoundError torch"


def test_lazy_names_are_the_objects_of_their_layers() -> None:
    from learning_diagrams import structure, torch, training
    from learning_diagrams.io import files

    assert ld.CompiledLoss is torch.CompiledLoss and ld.fit is training.fit
    assert ld.glue is structure.glue and ld.save is files.save
    assert ld.homsearch is structure.homsearch and ld.losses is ld.core.losses
    assert set(ld.__all__) <= set(dir(ld))
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        ld.nonsense  # noqa: B018


def test_an_unknown_back_end_is_refused_by_name() -> None:
    d = ld.Diagram().space("N", data=[0]).space("Y", loss=ld.losses.l1).map("f", "N", "Y", abs)
    with pytest.raises(ld.errors.OptionError, match="no backend named 'tensorflow' is registered"):
        d.compile(backend="tensorflow")


def test_no_module_of_the_library_is_over_700_lines() -> None:
    from pathlib import Path

    package = Path(ld.__file__).parent
    sizes = {
        str(path.relative_to(package)): len(path.read_text(encoding="utf-8").splitlines())
        for path in package.rglob("*.py")
        if "examples" not in path.parts
    }
    assert {name: n for name, n in sizes.items() if n > 700} == {}
