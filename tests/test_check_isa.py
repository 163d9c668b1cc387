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


# Both kernel builds as clang compiled them with -mno-fma: AVX-512F off, so the "avx512" build ran
# at AVX2 width (no zmm anywhere), which results cannot reveal.
NARROW = """
0000000000001000 <darnax::avx512::gather_axpy<float>(float const*)>:
    1000:\tvaddps %ymm1,%ymm0,%ymm0
    1004:\tvmulps (%rdi),%ymm2,%ymm2
0000000000002000 <darnax::avx2::gather_axpy<float>(float const*)>:
    2000:\tvaddps %ymm1,%ymm0,%ymm0
0000000000003000 <darnax::baseline::gather_axpy<float>(float const*)>:
    3000:\taddps %xmm1,%xmm0
"""


def test_a_build_without_its_vector_width_is_flagged():
    tool = _tool()
    assert tool.narrow_builds(NARROW) == ["darnax::avx512:: uses no 512-bit register in 1 functions"]
    assert tool.narrow_builds(NARROW.replace("%ymm", "%xmm")) == [
        "darnax::avx512:: uses no 512-bit register in 1 functions",
        "darnax::avx2:: uses no 256-bit register in 1 functions",
    ]
    assert tool.narrow_builds(DISASSEMBLY) == []
    assert tool.narrow_builds(NARROW.split("0000000000002000")[1]) == []  # no AVX-512 build: nothing to check


def test_fused_multiply_adds_in_darnax_code_are_flagged():
    fused = DISASSEMBLY.replace("vaddps %ymm1,%ymm0,%ymm0", "vfmadd231ps %ymm1,%ymm0,%ymm0").replace(
        "movaps %xmm3,%xmm0", "vfnmsub213ss %xmm3,%xmm1,%xmm0"
    )
    assert _tool().fused_multiply_adds(fused) == [
        "darnax::avx2::gather_axpy<float>(float const*): vfmadd231ps %ymm1,%ymm0,%ymm0",
        "darnax::isa_name(): vfnmsub213ss %xmm3,%xmm1,%xmm0",
    ]
    assert _tool().fused_multiply_adds(DISASSEMBLY) == []
    # x87 arithmetic and plain vector multiplies and adds are not fused
    assert _tool().fused_multiply_adds("0 <darnax::f()>:\n 0:\tfmul %st(1),%st\n 2:\tvmulpd %zmm0,%zmm1,%zmm2\n") == []


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) is not installed")
def test_a_stripped_module_is_refused_not_passed(capsys):
    """The installed module is stripped: the check cannot see function names, so it must not pass."""
    from darnax import _ext

    assert _tool().main([_ext.__file__]) == 2
    assert "stripped?" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("disassembly", "code", "message"),
    [
        (DISASSEMBLY.split("0000000000004000")[0], 0, ""),
        (DISASSEMBLY, 1, "wide instruction outside the kernel builds"),
        (NARROW, 1, "darnax::avx512:: uses no 512-bit register"),
        (DISASSEMBLY.split("0000000000004000")[0].replace("vaddps", "vfmadd132ps"), 1, "fused multiply-add"),
    ],
)
def test_main_fails_on_every_finding(tmp_path, capsys, disassembly, code, message):
    listing = tmp_path / "listing.txt"
    listing.write_text(disassembly)
    objdump = tmp_path / "objdump"
    objdump.write_text(f"#!/bin/sh\ncat {listing}\n")
    objdump.chmod(0o755)
    assert _tool().main([str(tmp_path / "_ext.so"), "--objdump", str(objdump)]) == code
    assert message in capsys.readouterr().err
