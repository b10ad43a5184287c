import sys

from flows.cli.main import command

sys.exit(command())
