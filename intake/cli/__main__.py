"""`python -m intake.cli`: the same command line as the installed `intake`."""

from intake.cli.root import main

main()
