"""Two-level lookup tables for the generated headers of src/normalize.c.

A table maps code points to small integers. It is written as an index by
cp >> shift, then blocks of 2**shift entries, identical blocks shared, so
that a lookup is two loads and the header stays small.
"""


def two_level(table, shift, prefix, ctype, fmt="%d,"):
    """C source lines for `table` (a dict cp -> value): PREFIX_SHIFT,
    PREFIX_LIMIT (code points from there on have no entry), prefix_index[]
    and prefix_block[][]."""
    size = 1 << shift
    limit = ((max(table) >> shift) + 1) << shift
    blocks = [tuple([0] * size)]
    seen = {blocks[0]: 0}
    index = []
    for base in range(0, limit, size):
        blk = tuple(table.get(cp, 0) for cp in range(base, base + size))
        if blk not in seen:
            seen[blk] = len(blocks)
            blocks.append(blk)
        index.append(seen[blk])
    if len(blocks) > 0xFFFF:
        raise ValueError("too many blocks for a 16-bit index")
    up, lo = prefix.upper(), prefix.lower()
    lines = ["#define %s_SHIFT\t%d" % (up, shift),
             "#define %s_LIMIT\t0x%X\t/* code points from here on have no entry */"
             % (up, limit), "",
             "static const uint16_t %s_index[%s_LIMIT >> %s_SHIFT] = {" % (lo, up, up)]
    for i in range(0, len(index), 16):
        lines.append("\t" + " ".join("%d," % v for v in index[i:i + 16]))
    lines += ["};", "",
              "static const %s %s_block[%d][1 << %s_SHIFT] = {" % (ctype, lo, len(blocks), up)]
    for blk in blocks:
        lines.append("\t{ " + " ".join(fmt % v for v in blk) + " },")
    lines.append("};")
    return lines
