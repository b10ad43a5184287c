"""The `nas` command line: `main` builds the parser from the command modules (`stages`,
`batches`, `playing`, `admin`), each owning its commands' flags, checks and output;
`common` holds what they share; `console` what a command prints, `local_server` the
Prefect server commands start when none is set."""
