"""fstab parsing: comments, octal escapes, defaults for short lines, quoted options."""

from __future__ import annotations

import pytest

from vmtailor.customizer.storage.fstab import FstabEntry, parse_fstab, split_options, unescape


def test_debian_installer_fstab():
    text = """\
# /etc/fstab: static file system information.
#
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
# / was on /dev/vda2 during installation
UUID=0a1b2c3d-0000-4000-8000-000000000001 /               ext4    errors=remount-ro 0       1
# /boot was on /dev/vda1 during installation
UUID=0a1b2c3d-0000-4000-8000-000000000002 /boot           ext4    defaults        0       2
/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0
"""
    fstab = parse_fstab(text)
    assert fstab.warnings == []
    root, boot, cdrom = fstab.entries
    assert root == FstabEntry(
        "UUID=0a1b2c3d-0000-4000-8000-000000000001",
        "/",
        "ext4",
        ("errors=remount-ro",),
        0,
        1,
        line=5,
    )
    assert root.tag == ("UUID", "0a1b2c3d-0000-4000-8000-000000000001")
    assert boot.target == "/boot" and boot.passno == 2 and boot.line == 7
    assert cdrom.fstype == "udf,iso9660" and cdrom.has("noauto") and cdrom.tag is None


def test_octal_escapes_in_every_field():
    (entry,) = parse_fstab(r"LABEL=My\040Data /srv/my\040data\011x ext4 defaults 0 2").entries
    assert entry.spec == "LABEL=My Data"
    assert entry.target == "/srv/my data\tx"
    assert entry.tag == ("LABEL", "My Data")
    assert unescape(r"a\134b\043c") == "a\\b#c"


def test_short_lines_take_mount_defaults():
    entries = parse_fstab("/dev/vdb1 /data\n/dev/vdc1 /srv xfs\n").entries
    assert [(e.fstype, e.options, e.freq, e.passno) for e in entries] == [
        ("auto", ("defaults",), 0, 0),
        ("xfs", ("defaults",), 0, 0),
    ]


def test_a_one_field_line_is_a_warning_not_a_failure():
    fstab = parse_fstab("garbage\nUUID=x / ext4 defaults 0 1\n")
    assert [e.target for e in fstab.entries] == ["/"]
    assert fstab.warnings == ["fstab line 1: ignored, not 'what where [type …]': garbage"]


def test_indented_comments_blank_lines_and_trailing_comments():
    text = "\n   # indented comment\n\t\nUUID=a / ext4 defaults 0 1 # the root\nUUID=b /x ext4 defaults # no pass\n"
    entries = parse_fstab(text).entries
    assert [(e.spec, e.target, e.freq, e.passno, e.line) for e in entries] == [
        ("UUID=a", "/", 0, 1, 4),
        ("UUID=b", "/x", 0, 0, 5),
    ]


def test_options_values_and_quoted_commas():
    opts = split_options('defaults,context="system_u:object_r:tmp_t:s0:c127,c456",subvol=@')
    assert opts == ("defaults", 'context="system_u:object_r:tmp_t:s0:c127,c456"', "subvol=@")
    entry = FstabEntry("UUID=x", "/", "btrfs", ("subvol=@old", "compress=zstd", "subvol=@"))
    assert entry.value("subvol") == "@"  # the last one wins, as in mount(8)
    assert entry.value("subvolid") is None
    assert entry.value("compress") == "zstd"


@pytest.mark.parametrize(
    "spec, tag",
    [
        ("UUID=abc", ("UUID", "abc")),
        ("uuid=abc", ("UUID", "abc")),
        ('LABEL="my root"', ("LABEL", "my root")),
        ("PARTUUID=1234-01", ("PARTUUID", "1234-01")),
        ("PARTLABEL=root", ("PARTLABEL", "root")),
        ("/dev/vda1", None),
        ("server:/export", None),
        ("ID=foo", None),
    ],
)
def test_tags(spec, tag):
    assert FstabEntry(spec, "/", "ext4").tag == tag


def test_empty_and_comment_only_tables():
    assert parse_fstab("").entries == []
    assert parse_fstab("# nothing here\n").entries == []


def test_crlf_and_tabs():
    (entry,) = parse_fstab("UUID=a\t/\txfs\tdefaults\t0\t0\r\n").entries
    assert (entry.target, entry.fstype, entry.passno) == ("/", "xfs", 0)
