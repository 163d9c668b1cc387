"""Check that only the AVX2 and AVX-512 kernel builds of a linked ``_ext`` use those instruction sets.

The kernel variants (``csrc/isa_avx2.cc``, ``csrc/isa_avx512.cc``) are compiled with wider
instruction sets than the rest of the module and are picked at run time only on CPUs that have
them. Code they instantiate outside their inline namespaces (``std::sort``, the thread pool's
inline functions) is merged by the linker with the portable copy; if the linker ever kept a
variant's copy, portable code would hold AVX instructions and crash (SIGILL) on older CPUs. This
script disassembles the module (``objdump -d -C``, symbols needed: run it before stripping) and
fails when a function outside ``darnax::avx2::``/``darnax::avx512::`` uses a 256-bit register,
or one outside ``darnax::avx512::`` uses a 512-bit, opmask or upper-16 vector register. CMake
runs it after linking ``_ext`` (see ``CMakeLists.txt``).

Usage::

    python tools/check_isa.py path/to/_ext.so [--objdump objdump]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

FUNCTION = re.compile(r"^[0-9a-f]+ <(.+)>:$")
AVX512_ONLY = re.compile(r"%(zmm\d+|k[0-7]\b|[xy]mm(1[6-9]|2\d|3[01])\b)")
YMM = re.compile(r"%ymm\d+")
AVX512_SCOPE = ("darnax::avx512::",)
WIDE_SCOPE = ("darnax::avx2::", "darnax::avx512::")


def leaks(disassembly: str) -> list[str]:
    """``"function: instruction"`` for each function outside its build's scope that uses its registers."""
    found: dict[str, str] = {}
    function = None
    for line in disassembly.splitlines():
        if match := FUNCTION.match(line):
            function = match[1]
            continue
        if function is None or function in found or "\t" not in line:
            continue
        instruction = line.split("\t", 1)[1].strip()
        allowed = AVX512_SCOPE if AVX512_ONLY.search(instruction) else WIDE_SCOPE if YMM.search(instruction) else None
        if allowed is not None and not any(s in function for s in allowed):
            found[function] = instruction
    return [f"{function}: {instruction}" for function, instruction in found.items()]


def main(argv: list[str] | None = None) -> int:
    """Disassemble the module and report leaks; returns 0 (none), 1 (leaks) or 2 (cannot check)."""
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
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
