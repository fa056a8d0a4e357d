"""Sets of addresses as sorted, disjoint [start, end) ranges: a 64 GiB map
is a handful of ranges where a set of pages would be millions."""


def normalize(ranges):
    """Sorted, with overlapping and touching ranges merged, empty ones dropped."""
    out = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def outward(ranges, unit):
    """Each range grown to whole UNITs: the units that hold any of its bytes."""
    return normalize((s - s % unit, -(-e // unit) * unit) for s, e in ranges)


def subtract(a, b):
    """The addresses in A and not in B."""
    out, b = [], normalize(b)
    for start, end in normalize(a):
        for bs, be in b:
            if be <= start or bs >= end:
                continue
            if bs > start:
                out.append((start, bs))
            start = max(start, be)
            if start >= end:
                break
        if start < end:
            out.append((start, end))
    return out


def intersect(a, b):
    return subtract(a, subtract(a, b))


def total(ranges):
    return sum(e - s for s, e in normalize(ranges))


def show(r):
    return f"{r[0]:#x}-{r[1]:#x}"
