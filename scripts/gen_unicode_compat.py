#!/usr/bin/env python3
"""Writes src/tokenizer/unicode_compat.inc: where Hugging Face `tokenizers` sees Unicode
differently from utf8proc.

sembed takes Unicode properties and normalization from utf8proc (Debian's libutf8proc, Unicode
15 in bookworm). `tokenizers` takes them from Rust crates pinned at other Unicode versions:
`unicode_categories` (punctuation, "other" categories: an old Unicode), `unicode-normalization-
alignments` (NFD/NFKD, and so which marks BertNormalizer strips) and Rust's std (lowercase,
newer than utf8proc). To give the same ids, sembed applies utf8proc and then these exceptions.
This script asks both libraries about every code point and lists only where they disagree.

Usage: python3 scripts/gen_unicode_compat.py [out.inc]   (needs `pip install tokenizers`)
"""
import ctypes
import ctypes.util
import sys

import tokenizers
from tokenizers import normalizers, pre_tokenizers

lib = ctypes.CDLL(ctypes.util.find_library("utf8proc") or "libutf8proc.so.2")
lib.utf8proc_category.restype = ctypes.c_int
lib.utf8proc_category.argtypes = [ctypes.c_int32]
lib.utf8proc_tolower.restype = ctypes.c_int32
lib.utf8proc_tolower.argtypes = [ctypes.c_int32]
lib.utf8proc_version.restype = ctypes.c_char_p
lib.utf8proc_unicode_version.restype = ctypes.c_char_p
lib.utf8proc_decompose_char.restype = ctypes.c_ssize_t
lib.utf8proc_decompose_char.argtypes = [ctypes.c_int32, ctypes.POINTER(ctypes.c_int32),
                                        ctypes.c_ssize_t, ctypes.c_int,
                                        ctypes.POINTER(ctypes.c_int)]
# utf8proc_category_t values
CN, LU, LL, LT, LM, LO, MN, MC, ME, ND, NL, NO, PC, PD, PS, PE, PI, PF, PO = range(19)
SM, SC, SK, SO, ZS, ZL, ZP, CC, CF, CS, CO = range(19, 30)
DECOMPOSE, COMPAT = 1 << 3, 1 << 2

buf = (ctypes.c_int32 * 64)()
last = ctypes.c_int(0)


def u_decomp(cp, compat):
    """Full decomposition of one code point by utf8proc (no reordering needed for one char)."""
    opts = DECOMPOSE | (COMPAT if compat else 0)
    last.value = 0
    n = lib.utf8proc_decompose_char(cp, buf, 64, opts, ctypes.byref(last))
    return [buf[i] for i in range(n)]


def code_points():
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        yield cp


clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False,
                                   strip_accents=False, lowercase=False)
strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False,
                                   strip_accents=True, lowercase=False)
lower = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False,
                                   strip_accents=False, lowercase=True)
nfd, nfkd = normalizers.NFD(), normalizers.NFKD()
bert_pre = pre_tokenizers.BertPreTokenizer()

WS = {9, 10, 11, 12, 13, 32, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F,
      0x205F, 0x3000}

control_add, control_del = [], []
punct_add, punct_del = [], []
mn_add, mn_del = [], []
lower_map = []
nfd_map, nfkd_map = [], []

for cp in code_points():
    c = chr(cp)
    cat = lib.utf8proc_category(cp)
    # is_control: tokenizers drops it in clean_text (U+0000 and U+FFFD are dropped separately)
    if cp not in (0, 0xFFFD, 9, 10, 13):
        hf = clean.normalize_str("a" + c + "b") == "ab"
        ours = cat in (CC, CF, CO, CS)
        if hf and not ours:
            control_add.append(cp)
        elif ours and not hf:
            control_del.append(cp)
    # punctuation: the BERT pre-tokenizer isolates it
    if cp not in WS and not clean.normalize_str(c) == "":
        hf = len(bert_pre.pre_tokenize_str("a" + c + "b")) == 3
        ours = (cp < 128 and chr(cp) in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") or PC <= cat <= PO
        if hf and not ours:
            punct_add.append(cp)
        elif ours and not hf:
            punct_del.append(cp)
    # canonical and compatibility decomposition
    hf_nfd = [ord(x) for x in nfd.normalize_str(c)]
    if hf_nfd != u_decomp(cp, False):
        nfd_map.append((cp, hf_nfd))
    hf_nfkd = [ord(x) for x in nfkd.normalize_str(c)]
    if hf_nfkd != u_decomp(cp, True):
        nfkd_map.append((cp, hf_nfkd))
    # nonspacing marks, as BertNormalizer's strip_accents sees them (on undecomposable chars)
    if hf_nfd == [cp]:
        hf = strip.normalize_str(c) == ""
        ours = cat == MN
        if hf and not ours:
            mn_add.append(cp)
        elif ours and not hf:
            mn_del.append(cp)
    # full lowercase
    hf_lower = [ord(x) for x in lower.normalize_str(c)]
    ours = [lib.utf8proc_tolower(cp)]
    if hf_lower != ours:
        lower_map.append((cp, hf_lower))


def ranges(cps):
    out = []
    for x in cps:
        if out and out[-1][1] == x - 1:
            out[-1][1] = x
        else:
            out.append([x, x])
    return out


def emit_ranges(f, name, cps):
    rs = ranges(cps)
    f.write(f"static const sembed__urange {name}[] = {{\n")
    for a, b in rs:
        f.write(f"    {{0x{a:04X}, 0x{b:04X}}},\n")
    if not rs:
        f.write("    {0xFFFFFFFF, 0xFFFFFFFF},\n")
    f.write(f"}};\nstatic const int32_t {name}_n = {len(rs)};\n\n")


def emit_map(f, name, entries, width):
    f.write(f"static const sembed__umap {name}[] = {{\n")
    for cp, outs in entries:
        if len(outs) > width:
            raise SystemExit(f"{name}: U+{cp:04X} maps to {len(outs)} code points (> {width})")
        vals = ", ".join(f"0x{x:04X}" for x in outs + [0] * (width - len(outs)))
        f.write(f"    {{0x{cp:04X}, {len(outs)}, {{{vals}}}}},\n")
    if not entries:
        f.write(f"    {{0xFFFFFFFF, 0, {{0}}}},\n")
    f.write(f"}};\nstatic const int32_t {name}_n = {len(entries)};\n\n")


out = sys.argv[1] if len(sys.argv) > 1 else "src/tokenizer/unicode_compat.inc"
width = max([len(o) for _, o in nfd_map + nfkd_map + lower_map] + [3])
with open(out, "w") as f:
    f.write("/* unicode_compat.inc — generated by scripts/gen_unicode_compat.py; do not edit.\n")
    f.write(f" * utf8proc {lib.utf8proc_version().decode()} (Unicode "
            f"{lib.utf8proc_unicode_version().decode()}) against tokenizers {tokenizers.__version__}.\n")
    f.write(" * Each table lists the code points where tokenizers' answer differs from utf8proc's. */\n\n")
    f.write(f"#define SEMBED__UMAP_WIDTH {width}\n")
    f.write(f'#define SEMBED__COMPAT_UTF8PROC "{lib.utf8proc_version().decode()}"\n')
    f.write(f'#define SEMBED__COMPAT_TOKENIZERS "{tokenizers.__version__}"\n\n')
    emit_ranges(f, "compat_control_add", control_add)
    emit_ranges(f, "compat_control_del", control_del)
    emit_ranges(f, "compat_punct_add", punct_add)
    emit_ranges(f, "compat_punct_del", punct_del)
    emit_ranges(f, "compat_mn_add", mn_add)
    emit_ranges(f, "compat_mn_del", mn_del)
    emit_map(f, "compat_lower", lower_map, width)
    emit_map(f, "compat_nfd", nfd_map, width)
    emit_map(f, "compat_nfkd", nfkd_map, width)
print(f"control +{len(control_add)} -{len(control_del)}, punct +{len(punct_add)} -{len(punct_del)}, "
      f"mn +{len(mn_add)} -{len(mn_del)}, lower {len(lower_map)}, nfd {len(nfd_map)}, "
      f"nfkd {len(nfkd_map)} -> {out}")
