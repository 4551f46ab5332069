#!/usr/bin/python3
"""Generates the sound and look-alike tables of src/normalize.c from ICU.

usage: tools/gen_fold.py OUTPUT.h

Both come from ICU's own data through python3-icu (PyICU), so an ICU update
only needs a rebuild; nothing here is a hand-made list.

The sound table (docs/rules.md, "sound"): every CJK ideograph of the BMP and
Extension A that ICU's transliterator "Han-Latin; Latin-ASCII" reads as one
pinyin syllable gets that syllable without its tone, folded the way southern
and careless typing merges sounds (zh/ch/sh with z/c/s, -ng with -n), as a
token: 威, 薇, 维, 卫 all read wei; 信, 心, 新, 星 all read xin. Tokens are
numbered from 1 in the order of their folded syllables. The syllables as
typed in Latin letters (wei, xin, xing...) are listed too, sorted, with
their tokens, so that typed pinyin folds to the same tokens.

The look-alike table (ICU's confusables, the data of its uspoof skeleton):
every letter or number outside ASCII, CJK and kana, and not a decimal digit
(Arabic-Indic ١ is 1 to the digits step, not the l of its skeleton), whose
NFKC + case folded form is not ASCII but whose skeleton (as typed, else once folded) is one
ASCII letter or digit maps to that character in lower case: Cyrillic х and
small capital ᴠ are x and v, Greek Η and Cyrillic Н are h. A capital letter
whose skeleton is also an ASCII capital's takes that capital's case folding
instead (imitated(): ICU's skeleton of I is l, so Greek Ι and Cyrillic І
would otherwise be l), and a numeral whose value is a digit with the same
skeleton takes that digit (numeral(): Old Italic 𐌠 is 1, not l). The normaliser looks a character up as typed, before
case folding.
"""

import os
import string
import sys
import unicodedata

from tablegen import two_level

SHIFT = 5
# Typed Latin runs fold only into syllables with a vowel (not m, hm, ng).
VOWELS = set("aeiouv")


def die(msg):
    sys.exit("gen_fold: " + msg)


def icu_module():
    try:
        import icu
    except ImportError:
        die("python3-icu is not installed (tools/deps.sh installs it)")
    return icu


def fold_syllable(s):
    """The sound a syllable shares with its near homophones."""
    for hard, soft in (("zh", "z"), ("ch", "c"), ("sh", "s")):
        if s.startswith(hard):
            s = soft + s[2:]
    if s.endswith("ng") and not s.endswith("ong") and len(s) > 2:
        s = s[:-1]
    return s


def sounds(icu):
    tr = icu.Transliterator.createInstance("Han-Latin; Latin-ASCII")
    cps = list(range(0x3400, 0x4DC0)) + list(range(0x4E00, 0xA000))
    read = tr.transliterate("\n".join(chr(c) for c in cps)).split("\n")
    if len(read) != len(cps):
        die("the transliterator changed the line count")
    typed = {}
    for r in read:
        if r.isascii() and r.isalpha() and set(r) & VOWELS:
            typed[r] = fold_syllable(r)
    folded = sorted(set(typed.values()))
    if not 300 <= len(folded) <= 450:
        die("%d folded syllables: is ICU's transliterator the one expected?" % len(folded))
    token = {s: i + 1 for i, s in enumerate(folded)}
    table = {}
    for cp, r in zip(cps, read):
        if r in typed:
            table[cp] = token[typed[r]]
    return table, token, typed


def prototypes(sc):
    """ASCII letters by their skeleton: the letters each skeleton stands for."""
    protos = {}
    for a in string.ascii_letters:
        protos.setdefault(sc.getSkeleton(0, a), []).append(a)
    return protos


def imitated(sk, c, protos):
    """The lower-case ASCII letter or digit that c, of skeleton sk, passes for.

    A skeleton names a class of look-alikes, not a letter: ICU's skeleton of
    I is l, the class of I, l and 1. A letter with case imitates the ASCII
    letter of its class in its own case, and becomes what case folding makes
    of that letter: Greek capital iota and Cyrillic capital I pass for I, so
    they are i, as ASCII I is; a small or caseless letter is the skeleton in
    lower case (Hebrew vav, l)."""
    if c.isupper() or c.istitle():
        for a in protos.get(sk, ()):
            if a.isupper():
                return a.lower()
    return sk.lower()


def numeral(ch, sk, sc):
    """The digit a numeral of one digit's value passes for, when ICU's
    skeleton is that digit's own: ICU reads 1 as l, so Old Italic numeral
    one and Mende Kikakui digit one would be l, and a phone number typed
    with them no number."""
    v = unicodedata.numeric(ch, None)
    if v is None or v != int(v) or not 0 <= v <= 9:
        return None
    d = str(int(v))
    return d if sc.getSkeleton(0, d) == sk else None


def confusables(icu):
    sc = icu.SpoofChecker()
    protos = prototypes(sc)
    out = {}
    for cp in range(0x80, 0x30000):
        if 0xD800 <= cp < 0xE000 or 0x3000 <= cp < 0x3100 or \
                0x3400 <= cp < 0xA000 or 0xAC00 <= cp < 0xD7B0 or cp >= 0x20000:
            continue
        ch = chr(cp)
        if unicodedata.category(ch)[0] not in "LN":
            continue
        nf = unicodedata.normalize("NFKC", ch).casefold()
        if nf.isascii():
            continue            # NFKC already folds it
        if "Nd" in (unicodedata.category(ch), unicodedata.category(nf[0])):
            continue            # a digit: the digits step reads its value
        # the character as typed first: Greek capital eta passes for H,
        # though its lower case (what case folding makes of it) reads n
        for c in (ch, nf):
            sk = sc.getSkeleton(0, c)
            if len(sk) == 1 and sk.isascii() and sk.isalnum():
                out[cp] = numeral(ch, sk, sc) or imitated(sk, c, protos)
                break
    if len(out) < 200:
        die("only %d look-alikes: is ICU's confusables data there?" % len(out))
    return out


def emit(out, table, token, typed, conf, icu_version):
    lines = ["/* Generated by tools/gen_fold.py from ICU %s: do not edit. */" % icu_version,
             "/* %d ideographs read as %d folded syllables; %d look-alikes. */"
             % (len(table), len(token), len(conf)),
             "#define FOLD_NTOKENS\t%d\t/* sound tokens are 1..FOLD_NTOKENS */" % len(token),
             "#define FOLD_SYLLABLE_MAX\t%d" % max(len(s) for s in typed), ""]
    lines += two_level(table, SHIFT, "sound", "uint16_t")
    lines += ["", "/* Typed pinyin, sorted, with the token each folds to. */",
              "static const struct fold_typed {", "\tconst char\t*syllable;",
              "\tuint16_t\t token;", "} fold_typed[] = {"]
    for s in sorted(typed):
        lines.append('\t{ "%s", %d },' % (s, token[typed[s]]))
    lines += ["};", "", "/* Look-alikes: code point, the ASCII character it passes for. */",
              "static const struct fold_conf {", "\tuint32_t\tcp;", "\tchar\t\tto;",
              "} fold_conf[] = {"]
    for cp in sorted(conf):
        lines.append("\t{ 0x%X, '%s' }," % (cp, conf[cp]))
    lines.append("};")
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out)


def main(argv):
    if len(argv) != 2:
        die("usage: gen_fold.py OUTPUT.h")
    icu = icu_module()
    table, token, typed = sounds(icu)
    conf = confusables(icu)
    emit(argv[1], table, token, typed, conf, icu.ICU_VERSION)


if __name__ == "__main__":
    main(sys.argv)
