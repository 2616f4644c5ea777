"""vmtailor media CONFIG --out FILE"""

from ..builder.media import FORMATS, write_media
from ..configfile import load_config, parse_vars
from ..output import add_json_flag, emit_json
from ..paths import output_file
from .vars import add_vars_arguments

NAME = "media"
HELP = "write config media (ISO, floppy or vfat image) for the customization ISO"
DESCRIPTION = """\
Validate a config (rendered with --var/--vars for one clone) and write it as config
media: /vmtailor/config.json (canonical JSON) plus the files its `source:` items name
under /vmtailor/files/, labelled VMTCONFIG. Attach it to the VM next to the customization
ISO (`vmtailor build`). The image is written 0600 (it carries password hashes and the
content of secret files), and files are 0600 on an ISO. `source:` files are read from the
config's folder (or --sources DIR) and never from outside it.

  iso     ISO 9660 with Rock Ridge, attach as a CD (default)
  floppy  1.44 MB FAT12 floppy image
  vfat    FAT disk image sized to fit, attach as a disk

examples:
  vmtailor media web.yaml --out web01.iso --var hostname=web01
  vmtailor media web.yaml --out web01.img --format floppy --vars web01.yaml"""


def add_arguments(p) -> None:
    p.add_argument("config", metavar="CONFIG", help="the YAML config file")
    p.add_argument("--out", required=True, metavar="FILE", help="where to write the media")
    p.add_argument("--format", choices=FORMATS, default="iso", help="media format (iso)")
    add_vars_arguments(p)
    add_json_flag(p)


def run(args) -> int:
    output_file(args.out)
    loaded = load_config(args.config, parse_vars(args.var, args.vars) or {}, args.sources)
    write_media(loaded.config, loaded.sources, args.out, args.format)
    if args.json:
        emit_json({"media": args.out, "format": args.format, "config": args.config})
    else:
        print(f"{args.out}: {args.format} config media for {args.config}")
    return 0
