#!/usr/bin/env python3
"""Regenerate the tables and constants of csrc/vmath.h.

    python tools/vmath_tables.py           # print the regions as generated here
    python tools/vmath_tables.py --write   # rewrite the regions in csrc/vmath.h
    python tools/vmath_tables.py --check   # exit 1, showing a diff, if the header differs

The header marks each region with `/* BEGIN GENERATED <name> by tools/vmath_tables.py */`
and `/* END GENERATED <name> */`; the code outside the regions is hand-written and left
alone.

How --check compares the two kinds of value:

* Values from mpmath (fa__exp_tab, the ln2 splits, RN(128/ln2), RN(1/ln2), the tanh
  Taylor coefficients, the pi/2 splits and the sin and cos polynomials, whose
  least-squares fits are solved in mpmath too) are computed at 60 digits, or are exact
  rationals, and rounded once to double.  They come out the same on every machine, so they are compared
  exactly, as text and therefore bit for bit.
* The float32 exp core's degree-8 polynomial is a least-squares Chebyshev fit made
  with numpy.  Its last bits depend on the OpenBLAS kernel behind numpy's lstsq (and on
  numpy's cos for the nodes).  With numpy 2.4.6 and OpenBLAS 0.3.31, the Haswell and
  Zen kernels reproduce the header's coefficients bit for bit.  The SkylakeX and
  Prescott kernels change the top coefficients by up to 1.4e-6 relative, but the
  polynomials still agree to 2^-50.  So the check compares polynomials, not single
  coefficients: the header's coefficients pass if, on the fit interval, their
  polynomial differs from a fresh fit by at most FIT_TOL = 2^-46 relative to exp(r).
  That is under 2% of the fit's own error (2^-39.7).  A per-coefficient relative
  tolerance loose enough for c8 would not notice a wrong digit in c1.  Coefficients
  that pass are kept, because the kernel's accuracy was measured with them.  Otherwise
  --check fails and --write writes in the fresh fit.
"""
import argparse
import difflib
import math
import pathlib
import re
import sys
from fractions import Fraction

import mpmath as mp
import numpy as np
from numpy.polynomial import chebyshev as C

mp.mp.dps = 60
LN2 = mp.log(2)
HEADER = pathlib.Path(__file__).resolve().parent.parent / "csrc" / "vmath.h"
REGION = re.compile(r"/\* BEGIN GENERATED (\w+) by tools/vmath_tables\.py \*/\n"
                    r"(.*?)/\* END GENERATED \1 \*/\n", re.S)

FIT_DEGREE, FIT_NODES = 8, 2000
FIT_MARGIN = 1.0001  # the fit covers |r| <= ln2/2 and the range reduction's rounding
FIT_HALFWIDTH = np.log(2) / 2 * FIT_MARGIN
FIT_TOL = 2.0 ** -46


def rn(v):
    """v (an mpf or a Fraction) rounded to the nearest double."""
    return float(v)


def round_sig(v, k):
    """v rounded to k significant bits."""
    e = int(mp.floor(mp.log(abs(v), 2)))
    return rn(mp.nint(v * mp.mpf(2) ** (k - 1 - e)) / mp.mpf(2) ** (k - 1 - e))


def round_multiple(v, k):
    """v rounded to a multiple of 2^-k."""
    return rn(mp.nint(v * mp.mpf(2) ** k) / mp.mpf(2) ** k)


def defines(rows):
    """`#define NAME value  /* comment */` lines with the comments aligned."""
    heads = [f"#define {name} {value.hex()}" for name, value, _ in rows]
    width = max(map(len, heads))
    return "".join(f"{h:<{width}} /* {c} */\n" if c else h + "\n"
                   for h, (_, _, c) in zip(heads, rows))


def exp_tab():
    vals = []
    for j in range(128):
        t = mp.mpf(2) ** (mp.mpf(j) / 128)
        hi = rn(t)
        vals += [hi, rn(t - hi)]
    lines = ["    " + ", ".join(v.hex() for v in vals[i:i + 4]) + ",\n"
             for i in range(0, len(vals), 4)]
    return ("/* entry j = 0..127: hi = RN(2^(j/128)), lo = RN(2^(j/128) - hi) */\n"
            "static const double fa__exp_tab[2 * 128] = {\n" + "".join(lines) + "};\n")


def exp_consts():
    hi = round_sig(LN2 / 128, 35)
    return defines([("FA__EXP_INVLN2N", rn(128 / LN2), "RN(128/ln2)"),
                    ("FA__EXP_LN2HI_N", hi, "ln2/128 rounded to 35 bits"),
                    ("FA__EXP_LN2LO_N", rn(LN2 / 128 - hi), "RN(ln2/128 - LN2HI_N)")])


def ln2_consts():
    hi = round_multiple(LN2, 42)
    return defines([("FA__LOG_LN2HI", hi, "ln2 rounded to a multiple of 2^-42"),
                    ("FA__LOG_LN2LO", rn(LN2 - hi), "RN(ln2 - LN2HI)")])


def tanh_coefs():
    """tanh x = sum over n >= 1 of 2^2n (2^2n - 1) B_2n x^(2n-1) / (2n)!, exactly."""
    rows = []
    for n in range(2, 8):
        p, q = mp.bernfrac(2 * n)
        c = Fraction(4**n * (4**n - 1) * p, q * math.factorial(2 * n))
        rows.append((f"FA__TANH_C{2 * n - 1}", rn(c), str(c)))
    return defines(rows)


def expf_fit():
    """Monomial coefficients of the degree-8 least-squares fit of exp(r) at Chebyshev
    nodes on |r| <= FIT_HALFWIDTH.  The targets are exp rounded to double (from mpmath;
    the header's fit took numpy's x86 long double exp, which rounds to the same values)."""
    a = FIT_HALFWIDTH
    t = np.cos(np.pi * (np.arange(FIT_NODES) + 0.5) / FIT_NODES) * a
    y = np.array([rn(mp.exp(float(v))) for v in t])
    c = C.cheb2poly(C.chebfit(t / a, y, FIT_DEGREE))
    return [float(c[i] / a**i) for i in range(FIT_DEGREE + 1)]


def fit_distance(c, h):
    """max over |r| <= FIT_HALFWIDTH of |P_c(r) - P_h(r)| / exp(r), on a fine grid."""
    r = np.linspace(-FIT_HALFWIDTH, FIT_HALFWIDTH, 4001)
    d = np.polyval((np.array(c) - np.array(h))[::-1], r)
    return float(np.max(np.abs(d) / np.exp(r)))


def expf_consts(coefs):
    return (defines([("FA__EXPF_INVLN2", rn(1 / LN2), "RN(1/ln2)")])
            + f"/* exp(r) ~= sum of FA__EXPF_Ci r^i: least-squares fit at {FIT_NODES} "
            f"Chebyshev nodes on\n * |r| <= {FIT_MARGIN} ln2/2 */\n"
            + defines([(f"FA__EXPF_C{i}", c, None) for i, c in enumerate(coefs)]))


# sin and cos, float64: |r| <= pi/4 after the reduction, and a margin for its rounding
TRIG_R = mp.pi / 4 * mp.mpf("1.0001")
TRIG_DEGREE, TRIG_NODES = 5, 400  # six coefficients each; least squares in mpmath


def trig_fit(g, weight):
    """The coefficients (mpf) of the degree-TRIG_DEGREE polynomial P(z) that best fits
    g(z) in the least-squares sense, weighted, at Chebyshev nodes of z = r^2 in
    (0, TRIG_R^2]: all in mpmath, so the same on every machine."""
    zmax = TRIG_R ** 2
    nodes = [zmax * (1 + mp.cos(mp.pi * (i + mp.mpf(0.5)) / TRIG_NODES)) / 2
             for i in range(TRIG_NODES)]
    a = mp.matrix([[weight(z) * z ** k for k in range(TRIG_DEGREE + 1)] for z in nodes])
    b = mp.matrix([weight(z) * g(z) for z in nodes])
    return list(mp.lu_solve(a.T * a, a.T * b))


def trig_error(f, approx):
    """max over 0 < r <= TRIG_R of |approx(r) - f(r)| / |f(r)|, on a fine grid."""
    return max(abs(approx(r) - f(r)) / abs(f(r))
               for r in (TRIG_R * mp.mpf(i) / 2000 for i in range(1, 2001)))


def trig_consts():
    """pi/2 in three 33-bit parts (n * part is exact for n < 2^20) and a rest; the sin
    polynomial r + r^3 S(r^2) and the cos polynomial 1 - r^2/2 + r^4 C(r^2), each fit
    to relative error and rounded to double."""
    half_pi = mp.pi / 2
    p1 = round_sig(half_pi, 33)
    p2 = round_sig(half_pi - p1, 33)
    p3 = round_sig(half_pi - p1 - p2, 33)
    p3t = rn(half_pi - p1 - p2 - p3)
    s = [rn(c) for c in trig_fit(lambda z: (mp.sin(mp.sqrt(z)) - mp.sqrt(z)) / z ** 1.5,
                                 lambda z: z ** 1.5 / mp.sin(mp.sqrt(z)))]
    c = [rn(c) for c in trig_fit(lambda z: (mp.cos(mp.sqrt(z)) - 1 + z / 2) / z ** 2,
                                 lambda z: z ** 2 / mp.cos(mp.sqrt(z)))]
    poly = lambda cs, z: sum(mp.mpf(v) * z ** k for k, v in enumerate(cs))  # noqa: E731
    es = trig_error(mp.sin, lambda r: r + r ** 3 * poly(s, r * r))
    ec = trig_error(mp.cos, lambda r: 1 - r * r / 2 + r ** 4 * poly(c, r * r))
    return (defines([("FA__TRIG_2OPI", rn(2 / mp.pi), "RN(2/pi)"),
                     ("FA__TRIG_PIO2_1", p1, "pi/2 rounded to 33 bits"),
                     ("FA__TRIG_PIO2_2", p2, "the next 33 bits"),
                     ("FA__TRIG_PIO2_3", p3, "the next 33 bits"),
                     ("FA__TRIG_PIO2_3T", p3t, "RN(the rest)")])
            + f"/* sin r ~= r + r^3 (S0 + S1 r^2 + ... + S5 r^10), relative error "
            f"{power_of_two(float(es))};\n * cos r ~= 1 - r^2/2 + r^4 (C0 + ... + C5 r^10), "
            f"{power_of_two(float(ec))}: least squares at\n * {TRIG_NODES} Chebyshev nodes "
            f"of r^2, |r| <= 1.0001 pi/4 */\n"
            + defines([(f"FA__SIN_S{i}", v, None) for i, v in enumerate(s)]
                      + [(f"FA__COS_C{i}", v, None) for i, v in enumerate(c)]))


def generate(fit):
    return {"exp_tab": exp_tab(), "exp_consts": exp_consts(), "ln2_consts": ln2_consts(),
            "tanh_coefs": tanh_coefs(), "expf_consts": expf_consts(fit),
            "trig_consts": trig_consts()}


def wrap(name, body):
    return (f"/* BEGIN GENERATED {name} by tools/vmath_tables.py */\n"
            f"{body}/* END GENERATED {name} */\n")


def power_of_two(d):
    return f"2^{math.log2(d):.3g}" if 0 < d < math.inf else str(d)


def expected(text):
    """(text with every region as this script makes it, a note on the fit)."""
    found = [(m[1], m[2]) for m in REGION.finditer(text)]
    fit = expf_fit()
    gen = generate(fit)
    if sorted(name for name, _ in found) != sorted(gen):
        sys.exit(f"the header must hold one region of each of {sorted(gen)}; "
                 f"found {[name for name, _ in found]}")
    regions = dict(found)
    old = [float.fromhex(v)
           for v in re.findall(r"#define FA__EXPF_C\d+ (\S+)", regions["expf_consts"])]
    dist = fit_distance(fit, old) if len(old) == len(fit) else math.inf
    if dist <= FIT_TOL:
        gen["expf_consts"] = expf_consts(old)
    note = (f"float32 exp fit: the header's polynomial is {power_of_two(dist)} from a "
            f"fresh fit (tolerance {power_of_two(FIT_TOL)})"
            + ("" if dist <= FIT_TOL else ", so the fresh fit is generated"))
    return REGION.sub(lambda m: wrap(m[1], gen[m[1]]), text), note


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the header's regions")
    mode.add_argument("--check", action="store_true", help="exit 1 if the header differs")
    ap.add_argument("--header", type=pathlib.Path, default=HEADER)
    args = ap.parse_args()
    if not (args.write or args.check):
        for name, body in generate(expf_fit()).items():
            print(wrap(name, body))
        return 0
    text = args.header.read_text()
    new, note = expected(text)
    if args.write:
        args.header.write_text(new)
        print(f"{args.header}: regions written; {note}")
        return 0
    if new == text:
        print(f"{args.header}: generated regions are up to date; {note}")
        return 0
    sys.stdout.writelines(difflib.unified_diff(
        text.splitlines(True), new.splitlines(True), str(args.header), "generated"))
    print(f"{args.header} differs from what tools/vmath_tables.py generates; {note}.\n"
          "If the generator is right, run `python tools/vmath_tables.py --write`.",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
