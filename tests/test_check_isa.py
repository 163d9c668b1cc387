"""tools/check_isa.py: the build's check that only the AVX2/AVX-512 kernel builds use wide registers."""

import importlib.util
import pathlib
import shutil

import pytest

TOOL = pathlib.Path(__file__).resolve().parents[1] / "tools" / "check_isa.py"


def _tool():
    spec = importlib.util.spec_from_file_location("check_isa", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DISASSEMBLY = """
0000000000001000 <darnax::avx512::sparse_outer<float>(float const*)::{lambda(long, long)#1}::operator()(long, long) const>:
    1000:\tvmovups (%rdi),%zmm0
    1004:\tkmovw %k1,%eax
0000000000002000 <darnax::avx2::gather_axpy<float>(float const*)>:
    2000:\tvaddps %ymm1,%ymm0,%ymm0
0000000000003000 <darnax::isa_name()>:
    3000:\tmovaps %xmm3,%xmm0
0000000000004000 <void std::__introsort_loop<int*, long>(int*, int*, long)>:
    4000:\tvmovdqu (%rax),%ymm2
    4008:\tvmovdqu (%rax),%ymm3
0000000000005000 <darnax::avx2::narrow_wrong()>:
    5000:\tvaddps %zmm1,%zmm0,%zmm0
0000000000006000 <darnax::ThreadPool::run(long)>:
    6000:\tvmovdqu64 %xmm17,(%rax)
0000000000007000 <darnax::baseline::pack()>:
    7000:\tkortestw %k2,%k2
"""


def test_wide_registers_are_flagged_only_outside_their_build():
    leaks = _tool().leaks(DISASSEMBLY)
    assert leaks == [
        "void std::__introsort_loop<int*, long>(int*, int*, long): vmovdqu (%rax),%ymm2",
        "darnax::avx2::narrow_wrong(): vaddps %zmm1,%zmm0,%zmm0",
        "darnax::ThreadPool::run(long): vmovdqu64 %xmm17,(%rax)",
        "darnax::baseline::pack(): kortestw %k2,%k2",
    ]


def test_portable_code_passes():
    assert _tool().leaks(DISASSEMBLY.split("0000000000004000")[0]) == []


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) is not installed")
def test_a_stripped_module_is_refused_not_passed(capsys):
    """The installed module is stripped: the check cannot see function names, so it must not pass."""
    from darnax import _ext

    assert _tool().main([_ext.__file__]) == 2
    assert "stripped?" in capsys.readouterr().err
