"""make series: build/series.mbox, the series as git send-email posts it.

The cover letter first, then every patch of patches/series as [PATCH v2 k/N]
([PATCH k/N] for v1: tree.SERIES_VERSION says which), each with To:
(maintainers and reviewers) and Cc: (lists) from scripts/get_maintainer.pl
run in build/linux; the cover letter goes to all of them. Nothing is sent.
"""
from . import cover, rangediff, series, tree
from .util import BUILD, KxError

MBOX = BUILD / "series.mbox"


def recipients(patch, cwd):
    """(to, cc) for PATCH: people to To:, lists to Cc:, the sender left out."""
    to, cc = [], []
    for line in series.get_maintainer(patch, cwd, rolestats=True):
        addr, _, role = line.partition(" (")   # "Name <a@b> (maintainer:SECTION (...))"
        if addr != tree.AUTHOR:
            (cc if "list" in role else to).append(addr)
    return to, cc


def with_headers(mail, subject_prefix, to, cc):
    """MAIL with its [PATCH] prefix replaced and To:/Cc: set before Subject:."""
    head, sep, rest = mail.partition("\n\n")
    lines = head.split("\n")
    at = next((i for i, ln in enumerate(lines) if ln.startswith("Subject: ")), None)
    if at is None:
        raise KxError(f"a mail has no Subject: header:\n{head}")
    lines[at] = lines[at].replace("[PATCH]", subject_prefix, 1)
    fold = ",\n    ".join
    lines[at:at] = ([f"To: {fold(to)}"] if to else []) + ([f"Cc: {fold(cc)}"] if cc else [])
    return "\n".join(lines) + sep + rest


def write(draft=False):
    """Write MBOX; refuse a stale cover letter, or unconfirmed statements unless DRAFT."""
    patches = tree.series_files()
    stale = series.cover_problem(patches)
    if stale:
        raise KxError(stale)
    letter = cover.COVER.read_text()
    marks = letter.count(cover.UNCONFIRMED)
    if marks and not draft:
        raise KxError(f"{cover.COVER.name} still holds {marks} statements marked "
                      f"{cover.UNCONFIRMED}: check them against the code, remove the marks "
                      f"in {cover.TEMPLATE.name}, run ./kx cover (or write a draft with "
                      "--draft)")
    prefix = tree.subject_prefix(0, len(patches))
    if f"\nSubject: {prefix} " not in letter:
        raise KxError(f"{cover.COVER.name} is not the cover letter {prefix} of this version "
                      "of the series: run ./kx cover")
    if rangediff.section() not in letter:      # section() refuses a missing or stale one
        raise KxError(f"{cover.COVER.name} does not end with the range-diff in "
                      f"{rangediff.shown(rangediff.OUT)}: run ./kx cover")
    tree.require_commits_are(patches)
    mails, all_to, all_cc = [], [], []
    for k, patch in enumerate(patches, 1):
        to, cc = recipients(patch, tree.TREE)
        all_to += [a for a in to if a not in all_to]
        all_cc += [a for a in cc if a not in all_cc]
        mails.append(with_headers(patch.read_text(), tree.subject_prefix(k, len(patches)), to,
                                   cc))
    mails.insert(0, with_headers(letter, "[PATCH]", all_to, all_cc))
    MBOX.parent.mkdir(parents=True, exist_ok=True)
    MBOX.write_text("".join(m if m.endswith("\n") else m + "\n" for m in mails))
    return MBOX, len(mails), marks
