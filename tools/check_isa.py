"""Check that only the AVX2 and AVX-512 kernel builds of a linked ``_ext`` use those instruction sets.

The kernel variants (``csrc/isa_avx2.cc``, ``csrc/isa_avx512.cc``) are compiled with wider
instruction sets than the rest of the module and are picked at run time only on CPUs that have
them. Code they instantiate outside their inline namespaces (``std::sort``, the thread pool's
inline functions) is merged by the linker with the portable copy; if the linker ever kept a
variant's copy, portable code would hold AVX instructions and crash (SIGILL) on older CPUs. This
script disassembles the module (``objdump -d -C``, symbols needed: run it before stripping) and
fails when a function outside ``darnax::avx2::``/``darnax::avx512::`` uses a 256-bit register,
or one outside ``darnax::avx512::`` uses a 512-bit, opmask or upper-16 vector register.

It also fails when a kernel build is not what its name says, which no test of results can see
(every build computes the same values): when the AVX-512 build uses no 512-bit register or the
AVX2 build no 256-bit one (a compiler flag took the instruction set away: clang's ``-mno-fma``
turns off AVX-512F, leaving that build at AVX2 width), and when any darnax function holds a fused
multiply-add (it rounds once where the baseline rounds twice). CMake runs it after linking
``_ext`` (see ``CMakeLists.txt``).

Usage::

    python tools/check_isa.py path/to/_ext.so [--objdump objdump]
"""

from __future__ import annotations

import argparse
import functools
import re
import subprocess
import sys

FUNCTION = re.compile(r"^[0-9a-f]+ <(.+)>:$")
AVX512_ONLY = re.compile(r"%(zmm\d+|k[0-7]\b|[xy]mm(1[6-9]|2\d|3[01])\b)")
YMM = re.compile(r"%ymm\d+")
ZMM = re.compile(r"%zmm\d+")
FMA = re.compile(r"v?f(n?m(add|sub)|maddsub|msubadd)\w*\s")
AVX512_SCOPE = ("darnax::avx512::",)
WIDE_SCOPE = ("darnax::avx2::", "darnax::avx512::")


@functools.lru_cache(maxsize=1)
def _functions(disassembly: str) -> dict[str, list[str]]:
    """Each function's instructions, by demangled name (read-only: the three checks of one listing
    share one parse, 0.2 s of a module's 220,000 lines)."""
    functions: dict[str, list[str]] = {}
    body: list[str] | None = None
    for line in disassembly.splitlines():
        if match := FUNCTION.match(line):
            body = functions.setdefault(match[1], [])
        elif body is not None and "\t" in line:
            body.append(line.split("\t", 1)[1].strip())
    return functions


def leaks(disassembly: str) -> list[str]:
    """``"function: instruction"`` for each function outside its build's scope that uses its registers."""
    found = []
    for function, body in _functions(disassembly).items():
        for instruction in body:
            allowed = (
                AVX512_SCOPE if AVX512_ONLY.search(instruction) else WIDE_SCOPE if YMM.search(instruction) else None
            )
            if allowed is not None and not any(s in function for s in allowed):
                found.append(f"{function}: {instruction}")
                break
    return found


def narrow_builds(disassembly: str) -> list[str]:
    """The kernel builds present in the module whose functions never use their vector width."""
    functions = _functions(disassembly)
    found = []
    for scope, register, width in (("darnax::avx512::", ZMM, "512"), ("darnax::avx2::", YMM, "256")):
        bodies = [body for name, body in functions.items() if scope in name]
        if bodies and not any(register.search(i) for body in bodies for i in body):
            found.append(f"{scope} uses no {width}-bit register in {len(bodies)} functions")
    return found


def fused_multiply_adds(disassembly: str) -> list[str]:
    """``"function: instruction"`` for each darnax function that holds an FMA instruction."""
    found = []
    for name, body in _functions(disassembly).items():
        if "darnax::" in name and (fused := next((i for i in body if FMA.match(i)), None)) is not None:
            found.append(f"{name}: {fused}")
    return found


def main(argv: list[str] | None = None) -> int:
    """Disassemble the module and report what it finds; returns 0 (nothing), 1 (a finding) or 2 (cannot check)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("module", help="the linked, not yet stripped _ext shared object")
    parser.add_argument("--objdump", default="objdump")
    args = parser.parse_args(argv)
    done = subprocess.run(
        [args.objdump, "-d", "-C", "--no-show-raw-insn", args.module], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(f"check_isa: {args.objdump} failed on {args.module}: {done.stderr.strip()}", file=sys.stderr)
        return 2
    if not any(s in done.stdout for s in WIDE_SCOPE):
        print(f"check_isa: {args.module} names no darnax::avx2:: or avx512:: function (stripped?)", file=sys.stderr)
        return 2
    found = leaks(done.stdout)
    for leak in found:
        print(f"check_isa: wide instruction outside the kernel builds: {leak}", file=sys.stderr)
    if found:
        print(
            f"check_isa: {len(found)} portable function(s) of {args.module} use AVX2/AVX-512 registers; "
            "they would crash on CPUs without them (see CMakeLists.txt on the kernel builds)",
            file=sys.stderr,
        )
    narrow = narrow_builds(done.stdout)
    for build in narrow:
        print(f"check_isa: a kernel build lost its instruction set: {build} (see CMakeLists.txt)", file=sys.stderr)
    fmas = fused_multiply_adds(done.stdout)
    for fma in fmas:
        print(f"check_isa: fused multiply-add (rounds unlike the baseline build): {fma}", file=sys.stderr)
    return 1 if found or narrow or fmas else 0


if __name__ == "__main__":
    sys.exit(main())
