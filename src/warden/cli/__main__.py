"""``python -m warden.cli ...``: the `warden` command, where its script is not on PATH."""

from warden.cli.main import main

main()
